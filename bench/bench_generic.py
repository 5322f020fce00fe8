"""Push and pull one large blob through Arbiter and through the reference registry.

Both servers run on loopback in the same run: ``arbiter serve`` (generic
format: ``PUT``/``GET /generic/bench/pkg/<version>/big.bin``) and Debian's
``docker-registry`` (distribution 2.8.2, monolithic blob upload: ``POST
/v2/<name>/blobs/uploads/`` then ``PUT ?digest=``). The same client (httpx,
streaming the body from disk) moves the same bytes through both, alternating
which server goes first each round. Every round appends a round marker to the
body, so no round is helped by deduplication.

Targets (issue 2): push >= 2x the reference, pull >= 1x, Arbiter's peak RSS
(server process tree) < 200 MB while moving the file.

Knobs: ``ARBITER_BENCH_SIZE_MB`` (default 1024 MiB), ``ARBITER_BENCH_ROUNDS``
(default 3; medians are reported), ``ARBITER_BENCH_DIR`` (scratch space,
default the system temp dir).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from bench._util import (
    MB,
    MiB,
    Row,
    RssSampler,
    ServerProcess,
    Timer,
    curl_download,
    free_port,
    iter_file,
    mb_per_s,
    median,
    print_limit,
    print_table,
    save_results,
    settle_writeback,
    tune_httpx_reads,
    write_random_file,
)

SIZE = int(os.environ.get("ARBITER_BENCH_SIZE_MB", "1024")) * MiB
ROUNDS = int(os.environ.get("ARBITER_BENCH_ROUNDS", "3"))
SCRATCH = os.environ.get("ARBITER_BENCH_DIR") or None
PUSH_TARGET = 2.0
PULL_TARGET = 1.0
RSS_LIMIT_MB = 200.0
REPOSITORY = "bench"
RESULTS = Path(__file__).resolve().parent / "results" / "generic.json"
TIMEOUT = httpx.Timeout(900.0, connect=10.0)
CURL = shutil.which("curl") is not None
Pull = Callable[[str, Mapping[str, str]], int]


@dataclass
class Payload:
    """The file on disk plus a per-round marker; digests computed without re-reading."""

    path: Path
    size: int
    base: hashlib._Hash = field(repr=False)

    def marker(self, round_no: int) -> bytes:
        return f"\narbiter-bench-round-{round_no:04d}\n".encode()

    def total(self, round_no: int) -> int:
        return self.size + len(self.marker(round_no))

    def sha256(self, round_no: int) -> str:
        hasher = self.base.copy()
        hasher.update(self.marker(round_no))
        return hasher.hexdigest()

    def body(self, round_no: int) -> Iterator[bytes]:
        return iter_file(self.path, self.marker(round_no))


class Target(Protocol):
    """A server under test, as the benchmark drives it."""

    name: str
    server: ServerProcess

    def headers(self) -> dict[str, str]: ...

    def ready(self, client: httpx.Client) -> None: ...

    def push(self, client: httpx.Client, payload: Payload, round_no: int) -> None: ...

    def pull_url(self, payload: Payload, round_no: int) -> str: ...


def drain(client: httpx.Client, url: str, headers: Mapping[str, str], hasher: object = None) -> int:
    """GET ``url`` and throw the body away (or feed ``hasher``); return the byte count."""
    received = 0
    update = getattr(hasher, "update", None)
    with client.stream("GET", url, headers=headers) as response:
        response.raise_for_status()
        for chunk in response.iter_raw(MiB):
            received += len(chunk)
            if update is not None:
                update(chunk)
    return received


@dataclass
class Reference:
    """Debian's docker-registry with filesystem storage and no auth."""

    workdir: Path
    name: str = "docker-registry"
    server: ServerProcess = field(init=False)

    def __post_init__(self) -> None:
        binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        port = free_port()
        storage = self.workdir / "reference-storage"
        storage.mkdir()
        config = self.workdir / "reference.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
            "  maintenance:\n    uploadpurging:\n      enabled: false\n"
            f"http:\n  addr: 127.0.0.1:{port}\n  secret: arbiter-bench-only\n"
        )
        self.server = ServerProcess(
            self.name, [binary, "serve", str(config)], port, self.workdir / "reference.log"
        )

    def headers(self) -> dict[str, str]:
        return {}

    def ready(self, client: httpx.Client) -> None:
        client.get(f"{self.server.url}/v2/").raise_for_status()

    def push(self, client: httpx.Client, payload: Payload, round_no: int) -> None:
        started = client.post(f"{self.server.url}/v2/{REPOSITORY}/blobs/uploads/")
        started.raise_for_status()
        location = httpx.URL(self.server.url).join(started.headers["Location"])
        url = location.copy_merge_params({"digest": "sha256:" + payload.sha256(round_no)})
        headers = {
            "Content-Length": str(payload.total(round_no)),
            "Content-Type": "application/octet-stream",
        }
        response = client.put(url, content=payload.body(round_no), headers=headers)
        if response.status_code != 201:
            raise RuntimeError(f"reference push: {response.status_code} {response.text[:300]}")

    def pull_url(self, payload: Payload, round_no: int) -> str:
        return f"{self.server.url}/v2/{REPOSITORY}/blobs/sha256:{payload.sha256(round_no)}"


@dataclass
class Arbiter:
    """``arbiter serve`` on a fresh data directory with a known bootstrap token."""

    workdir: Path
    name: str = "arbiter"
    token: str = field(default_factory=lambda: "arb_bench_" + secrets.token_hex(16))
    server: ServerProcess = field(init=False)

    def __post_init__(self) -> None:
        binary = Path(sys.executable).with_name("arbiter")
        command = [str(binary)] if binary.exists() else [sys.executable, "-m", "registry.cli.main"]
        port = free_port()
        data = self.workdir / "arbiter-data"
        self.server = ServerProcess(
            self.name,
            [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--data", str(data)],
            port,
            self.workdir / "arbiter.log",
            env={"ARBITER_BOOTSTRAP_TOKEN": self.token, "ARBITER_LOG_LEVEL": "warning"},
        )

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def ready(self, client: httpx.Client) -> None:
        client.get(f"{self.server.url}/readyz").raise_for_status()
        response = client.post(
            f"{self.server.url}/api/v1/repositories",
            json={"name": REPOSITORY, "format": "generic"},
            headers=self.headers(),
        )
        if response.status_code not in (200, 201):
            raise RuntimeError(f"creating the repository: {response.status_code} {response.text}")

    def _path(self, round_no: int) -> str:
        return f"{self.server.url}/generic/{REPOSITORY}/pkg/1.0.{round_no}/big.bin"

    def push(self, client: httpx.Client, payload: Payload, round_no: int) -> None:
        sha256 = payload.sha256(round_no)
        headers = {
            **self.headers(),
            "Content-Length": str(payload.total(round_no)),
            "Content-Type": "application/octet-stream",
            "X-Checksum-Sha256": sha256,
        }
        response = client.put(self._path(round_no), content=payload.body(round_no), headers=headers)
        if response.status_code != 201:
            raise RuntimeError(f"arbiter push: {response.status_code} {response.text[:300]}")
        stored = response.json().get("sha256")
        if stored != sha256:
            raise RuntimeError(f"arbiter stored sha256 {stored}, expected {sha256}")

    def pull_url(self, payload: Payload, round_no: int) -> str:
        return self._path(round_no)


@dataclass
class Figures:
    push_s: list[float] = field(default_factory=list)
    pull_s: list[float] = field(default_factory=list)
    curl_pull_s: list[float] = field(default_factory=list)
    baseline_rss: int = 0
    peak_rss: int = 0
    peak_process_rss: int = 0


def verify_pull(
    client: httpx.Client, target: Target, payload: Payload, headers: dict[str, str]
) -> None:
    """One untimed download hashed end to end (timed pulls only count bytes)."""
    hasher = hashlib.sha256()
    drain(client, target.pull_url(payload, 0), headers, hasher)
    if hasher.hexdigest() != payload.sha256(0):
        raise RuntimeError(f"{target.name} served bytes that do not hash to what was pushed")


def timed_pull(target: Target, payload: Payload, round_no: int, pull: Pull) -> float:
    """Seconds for one download through ``pull``, after checking the byte count."""
    settle_writeback()
    with Timer() as timer:
        received = pull(target.pull_url(payload, round_no), target.headers())
    if received != payload.total(round_no):
        raise RuntimeError(
            f"{target.name} served {received} bytes, expected {payload.total(round_no)}"
        )
    return timer.seconds


def one_round(
    client: httpx.Client,
    targets: list[Target],
    payload: Payload,
    round_no: int,
    figures: dict[str, Figures],
) -> None:
    """Push through each target, then pull from each; alternate who goes first."""
    order = targets if round_no % 2 == 0 else targets[::-1]
    for target in order:
        settle_writeback()
        with Timer() as timer:
            target.push(client, payload, round_no)
        figures[target.name].push_s.append(timer.seconds)
    for target in order:
        seconds = timed_pull(target, payload, round_no, functools.partial(drain, client))
        figures[target.name].pull_s.append(seconds)
    if CURL:
        for target in order:
            seconds = timed_pull(target, payload, round_no, curl_download)
            figures[target.name].curl_pull_s.append(seconds)
    for target in order:
        print_round(target.name, figures[target.name], payload.total(round_no), round_no)


def print_round(name: str, figures: Figures, size: int, round_no: int) -> None:
    push_s, pull_s = figures.push_s[-1], figures.pull_s[-1]
    line = (
        f"  round {round_no + 1}/{ROUNDS} {name:<16} push {push_s:5.2f} s"
        f" ({mb_per_s(size, push_s):6.1f} MB/s)  pull {pull_s:5.2f} s"
        f" ({mb_per_s(size, pull_s):6.1f} MB/s)"
    )
    if figures.curl_pull_s:
        curl_s = figures.curl_pull_s[-1]
        line += f"  curl pull {curl_s:5.2f} s ({mb_per_s(size, curl_s):6.1f} MB/s)"
    print(line, flush=True)


def speed_row(metric: str, size: int, ours: list[float], ref: list[float], **kw: Any) -> Row:
    return Row(metric, mb_per_s(size, median(ours)), mb_per_s(size, median(ref)), "MB/s", **kw)


def rss_row(metric: str, ours: int, ref: int) -> Row:
    return Row(metric, ours / MB, ref / MB, "MB", higher_is_better=False)


def report(payload: Payload, figures: dict[str, Figures]) -> bool:
    """Print the table and the RSS limit; ``True`` when every target was met."""
    ours, ref = figures["arbiter"], figures["docker-registry"]
    size = payload.total(0)
    rows = [
        speed_row("push (median)", size, ours.push_s, ref.push_s, target=PUSH_TARGET),
        speed_row("pull (median)", size, ours.pull_s, ref.pull_s, target=PULL_TARGET),
    ]
    if ours.curl_pull_s:
        rows.append(
            speed_row("pull, curl client (median)", size, ours.curl_pull_s, ref.curl_pull_s)
        )
    rows += [
        rss_row("RSS idle (process tree)", ours.baseline_rss, ref.baseline_rss),
        rss_row("RSS peak (process tree)", ours.peak_rss, ref.peak_rss),
        rss_row("RSS peak (one process)", ours.peak_process_rss, ref.peak_process_rss),
    ]
    title = f"generic blob, {size / MiB:.0f} MiB, {ROUNDS} round(s), loopback"
    print_table(title, rows, anchor="docker-registry")
    rss_ok = print_limit("arbiter RSS peak (tree)", ours.peak_rss / MB, RSS_LIMIT_MB, "MB")
    save(size, figures, rows)
    return rss_ok and all(row.verdict == "ok" for row in rows if row.target is not None)


def save(size: int, figures: dict[str, Figures], rows: list[Row]) -> None:
    save_results(RESULTS, {"size": size, "rounds": ROUNDS}, dict(figures), rows)


def measure(client: httpx.Client, targets: list[Target], payload: Payload) -> dict[str, Figures]:
    """All rounds under RSS sampling, then one verified download per server."""
    figures = {t.name: Figures() for t in targets}
    samplers = [RssSampler(t.server.pid) for t in targets]
    with contextlib.ExitStack() as stack:
        for sampler in samplers:
            stack.enter_context(sampler)
        for round_no in range(ROUNDS):
            one_round(client, targets, payload, round_no, figures)
    for target, sampler in zip(targets, samplers, strict=True):
        figure = figures[target.name]
        figure.baseline_rss, figure.peak_rss = sampler.baseline, sampler.peak
        figure.peak_process_rss = sampler.peak_process
    for target in targets:
        verify_pull(client, target, payload, target.headers())
    print("  downloads verified: sha256 matches on both servers", flush=True)
    return figures


def main() -> None:
    tune_httpx_reads()
    with tempfile.TemporaryDirectory(prefix="arbiter-bench-", dir=SCRATCH) as scratch:
        workdir = Path(scratch)
        print(f"writing a {SIZE / MiB:.0f} MiB random file in {workdir} ...", flush=True)
        payload_path = workdir / "big.bin"
        payload = Payload(payload_path, SIZE, write_random_file(payload_path, SIZE))
        targets: list[Target] = [Arbiter(workdir), Reference(workdir)]
        with contextlib.ExitStack() as servers, httpx.Client(timeout=TIMEOUT) as client:
            for target in targets:
                servers.enter_context(target.server)
            try:
                for target in targets:
                    target.ready(client)
                figures = measure(client, targets, payload)
            except BaseException:
                for target in targets:
                    print(target.server.log_tail())
                raise
        if not report(payload, figures):
            print("\nat least one target was missed (see above)")
