"""OCI distribution: Arbiter's ``/v2`` against the reference registry, in one run.

Both servers run on loopback: ``arbiter serve`` (every request authenticated
with a registry token from ``/v2/token``, decided by the policy and recorded
in the audit log) and Debian's ``docker-registry`` (distribution 2.8.2,
filesystem storage, no auth). Measured, each on both, alternating who goes
first each round:

* push of a 1 GiB blob: ``POST /v2/<name>/blobs/uploads/`` then ``PUT ?digest=``
  with the body streamed from disk (the monolithic upload every client has);
* pull of that blob (``GET /v2/<name>/blobs/<digest>``; Arbiter answers it
  with a ``307`` to its download listener, which sends the file with
  ``sendfile``, as distribution redirects to an object store; the client
  follows redirects on both servers), by curl and by httpx. The target is on
  curl's figure: httpx, even reading 1 MiB at a time, tops out near 2.5 GB/s
  on the 2-core machine whichever server sends (measured: 2.2-2.5 GB/s from
  each, while curl took 3.0-4.0 GB/s from Arbiter's listener and 2.0-2.3 from
  docker-registry), so its ratio measures the client. Without curl, httpx's
  figure carries the target;
* 16 concurrent pulls of 16 different 10 MiB blobs (aggregate MB/s);
* manifest GETs per second by tag with 16 connections (``wrk``, 2 threads).

Targets (issue R4): push >= 2x the reference, blob pull >= 1x, manifest GET
>= 1x.

Knobs: ``ARBITER_BENCH_SIZE_MB`` (default 1024), ``ARBITER_BENCH_ROUNDS``
(default 3, medians reported), ``ARBITER_BENCH_WRK_SECONDS`` (default 10),
``ARBITER_BENCH_ENGINE`` (the policy engine, default ``wasm``),
``ARBITER_BENCH_WORKERS`` (Arbiter's granian workers, default one per
core, as ``arbiter serve --workers`` is deployed), ``ARBITER_BENCH_DOWNLOADS``
(``0`` sends blobs from the app server instead of the download listener),
``ARBITER_BENCH_DIR`` (scratch space).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench._util import (
    MiB,
    Row,
    ServerProcess,
    Timer,
    arbiter_server,
    curl_download,
    free_port,
    iter_file,
    mb_per_s,
    median,
    print_table,
    save_results,
    server_engine,
    server_workers,
    settle_writeback,
    tune_httpx_reads,
    write_random_file,
    wrk_rate,
)

SIZE = int(os.environ.get("ARBITER_BENCH_SIZE_MB", "1024")) * MiB
ROUNDS = int(os.environ.get("ARBITER_BENCH_ROUNDS", "3"))
DOWNLOADS = os.environ.get("ARBITER_BENCH_DOWNLOADS", "1") != "0"
CURL = shutil.which("curl") is not None
WRK_SECONDS = int(os.environ.get("ARBITER_BENCH_WRK_SECONDS", "10"))
WORKERS = server_workers()
SCRATCH = os.environ.get("ARBITER_BENCH_DIR") or None
SMALL = 10 * MiB
CONCURRENCY = 16
PUSH_TARGET, PULL_TARGET, MANIFEST_TARGET = 2.0, 1.0, 1.0
NAME = "bench/app"
RESULTS = Path(__file__).resolve().parent / "results" / "oci.json"
TIMEOUT = httpx.Timeout(900.0, connect=10.0)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class Target:
    """A registry under test and how to authenticate to it."""

    name: str
    server: ServerProcess
    token: str | None = None  # a registry token; None for the unauthenticated reference

    @property
    def url(self) -> str:
        return self.server.url

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def reference(workdir: Path) -> Target:
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    port = free_port()
    storage = workdir / "reference-storage"
    storage.mkdir()
    config = workdir / "reference.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
        "  delete:\n    enabled: true\n"
        "  maintenance:\n    uploadpurging:\n      enabled: false\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: arbiter-bench-only\n"
    )
    server = ServerProcess(
        "docker-registry", [binary, "serve", str(config)], port, workdir / "reference.log"
    )
    return Target("docker-registry", server)


def arbiter(workdir: Path, admin_token: str) -> Target:
    env = {"ARBITER_DOWNLOAD_PORT": str(free_port())} if DOWNLOADS else {}
    return Target("arbiter", arbiter_server(workdir, admin_token, WORKERS, env))


def prepare_arbiter(client: httpx.Client, target: Target, admin_token: str) -> None:
    """Create the OCI repository and fetch a registry token, as ``docker login`` would."""
    admin = {"Authorization": f"Bearer {admin_token}"}
    client.get(f"{target.url}/readyz").raise_for_status()
    created = client.post(
        f"{target.url}/api/v1/repositories",
        json={"name": NAME.split("/")[0], "format": "oci"},
        headers=admin,
    )
    if created.status_code not in (200, 201):
        raise RuntimeError(f"creating the repository: {created.status_code} {created.text}")
    issued = client.get(
        f"{target.url}/v2/token",
        params={"service": "arbiter", "scope": f"repository:{NAME}:pull,push"},
        auth=("admin", admin_token),
    )
    issued.raise_for_status()
    target.token = issued.json()["token"]


def push_blob(client: httpx.Client, target: Target, body: object, size: int, digest: str) -> None:
    started = client.post(f"{target.url}/v2/{NAME}/blobs/uploads/", headers=target.headers())
    if started.status_code != 202:
        raise RuntimeError(f"{target.name} POST: {started.status_code} {started.text[:300]}")
    location = httpx.URL(target.url).join(started.headers["Location"])
    url = location.copy_merge_params({"digest": digest})
    headers = {
        **target.headers(),
        "Content-Length": str(size),
        "Content-Type": "application/octet-stream",
    }
    done = client.put(url, content=body, headers=headers)  # type: ignore[arg-type]
    if done.status_code != 201:
        raise RuntimeError(f"{target.name} PUT: {done.status_code} {done.text[:300]}")


def pull_blob(client: httpx.Client, target: Target, digest: str) -> int:
    received = 0
    url = f"{target.url}/v2/{NAME}/blobs/{digest}"
    with client.stream("GET", url, headers=target.headers()) as response:
        response.raise_for_status()
        for chunk in response.iter_raw(MiB):
            received += len(chunk)
    return received


@dataclass
class Figures:
    push_s: list[float] = field(default_factory=list)
    pull_s: list[float] = field(default_factory=list)
    curl_pull_s: list[float] = field(default_factory=list)
    small_s: list[float] = field(default_factory=list)
    manifest_rps: list[float] = field(default_factory=list)


def big_rounds(
    client: httpx.Client, targets: list[Target], path: Path, figures: dict[str, Figures]
) -> None:
    base = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(MiB):
            base.update(chunk)
    for round_no in range(ROUNDS):
        marker = f"\narbiter-oci-bench-{round_no:04d}-{secrets.token_hex(4)}\n".encode()
        hasher = base.copy()
        hasher.update(marker)
        digest = "sha256:" + hasher.hexdigest()
        size = SIZE + len(marker)
        order = targets if round_no % 2 == 0 else targets[::-1]
        for target in order:
            settle_writeback()
            with Timer() as timer:
                push_blob(client, target, iter_file(path, marker), size, digest)
            figures[target.name].push_s.append(timer.seconds)
        for target in order:
            settle_writeback()
            with Timer() as timer:
                received = pull_blob(client, target, digest)
            if received != size:
                raise RuntimeError(f"{target.name} served {received} bytes, expected {size}")
            figures[target.name].pull_s.append(timer.seconds)
        if CURL:
            curl_pulls(order, digest, size, figures)
        for target in order:
            print_round(round_no, target.name, size, figures[target.name])


def curl_pulls(order: list[Target], digest: str, size: int, figures: dict[str, Figures]) -> None:
    """The same blob again, by curl (a C client), in the round's order."""
    for target in order:
        settle_writeback()
        url = f"{target.url}/v2/{NAME}/blobs/{digest}"
        with Timer() as timer:
            received = curl_download(url, target.headers())
        if received != size:
            raise RuntimeError(f"{target.name} served curl {received} bytes, expected {size}")
        figures[target.name].curl_pull_s.append(timer.seconds)


def print_round(round_no: int, name: str, size: int, f: Figures) -> None:
    line = (
        f"  round {round_no + 1}/{ROUNDS} {name:<16} push {f.push_s[-1]:6.2f} s "
        f"({mb_per_s(size, f.push_s[-1]):7.1f} MB/s)  pull {f.pull_s[-1]:6.2f} s "
        f"({mb_per_s(size, f.pull_s[-1]):7.1f} MB/s)"
    )
    if f.curl_pull_s:
        line += f"  curl pull {mb_per_s(size, f.curl_pull_s[-1]):7.1f} MB/s"
    print(line, flush=True)


def small_pulls(client: httpx.Client, targets: list[Target], figures: dict[str, Figures]) -> None:
    """16 different 10 MiB blobs pulled at once; three rounds, median kept."""
    blobs = [os.urandom(SMALL) for _ in range(CONCURRENCY)]
    digests = ["sha256:" + hashlib.sha256(blob).hexdigest() for blob in blobs]
    for target in targets:
        for blob, digest in zip(blobs, digests, strict=True):
            push_blob(client, target, blob, len(blob), digest)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    with (
        httpx.Client(timeout=TIMEOUT, limits=limits, follow_redirects=True) as pool_client,
        concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool,
    ):
        for round_no in range(3):
            order = targets if round_no % 2 == 0 else targets[::-1]
            for target in order:
                settle_writeback()
                with Timer() as timer:
                    pulls = [pool.submit(pull_blob, pool_client, target, d) for d in digests]
                    sizes = [pull.result() for pull in pulls]
                if sizes != [SMALL] * CONCURRENCY:
                    raise RuntimeError(f"{target.name} served short blobs: {sizes}")
                figures[target.name].small_s.append(timer.seconds)
    for target in targets:
        seconds = median(figures[target.name].small_s)
        total = SMALL * CONCURRENCY
        print(f"  {CONCURRENCY} x 10 MiB {target.name:<16} {seconds:6.2f} s "
              f"({mb_per_s(total, seconds):7.1f} MB/s)", flush=True)  # fmt: skip


def push_manifest(client: httpx.Client, target: Target) -> str:
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layer = os.urandom(4096)
    for blob in (config, layer):
        push_blob(client, target, blob, len(blob), "sha256:" + hashlib.sha256(blob).hexdigest())
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest(),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    url = f"{target.url}/v2/{NAME}/manifests/latest"
    headers = {**target.headers(), "Content-Type": OCI_MANIFEST}
    response = client.put(url, content=manifest, headers=headers)
    if response.status_code != 201:
        raise RuntimeError(f"{target.name} manifest PUT: {response.status_code} {response.text}")
    return url


def manifest_rate(target: Target, url: str) -> float:
    """Manifest GETs per second; every answer must be a 200."""
    headers = {"Accept": OCI_MANIFEST, **target.headers()}
    return wrk_rate("manifest GET", target.name, url, headers, seconds=WRK_SECONDS,
                    connections=CONCURRENCY)  # fmt: skip


def manifest_rounds(
    targets: list[Target], urls: dict[str, str], figures: dict[str, Figures]
) -> None:
    """``ROUNDS`` wrk runs on each server, alternating who goes first; the median is kept.

    One 10-second run apiece swung by a fifth between runs on this machine
    (writeback after the gigabyte pushes, the other tenant of the cores).
    """
    for round_no in range(ROUNDS):
        for target in targets if round_no % 2 == 0 else targets[::-1]:
            rate = manifest_rate(target, urls[target.name])
            figures[target.name].manifest_rps.append(rate)


def pull_rows(ours: Figures, ref: Figures, size: int) -> list[Row]:
    """The 1 GiB pull by httpx and, when there is curl, by curl (which carries the target)."""
    rows = [
        Row(f"{SIZE / MiB:.0f} MiB pull, httpx (median)", mb_per_s(size, median(ours.pull_s)),
            mb_per_s(size, median(ref.pull_s)), "MB/s",
            target=None if ours.curl_pull_s else PULL_TARGET),
    ]  # fmt: skip
    if ours.curl_pull_s:
        rows.append(
            Row(f"{SIZE / MiB:.0f} MiB pull, curl (median)",
                mb_per_s(size, median(ours.curl_pull_s)),
                mb_per_s(size, median(ref.curl_pull_s)), "MB/s", target=PULL_TARGET)
        )  # fmt: skip
    return rows


def report(figures: dict[str, Figures]) -> list[Row]:
    ours, ref = figures["arbiter"], figures["docker-registry"]
    size = SIZE
    small = SMALL * CONCURRENCY
    rows = [
        Row(f"{SIZE / MiB:.0f} MiB push (median)", mb_per_s(size, median(ours.push_s)),
            mb_per_s(size, median(ref.push_s)), "MB/s", target=PUSH_TARGET),
        *pull_rows(ours, ref, size),
        Row("16 x 10 MiB pulls", mb_per_s(small, median(ours.small_s)),
            mb_per_s(small, median(ref.small_s)), "MB/s", target=PULL_TARGET),
        Row("manifest GET, 16 conns (median)", median(ours.manifest_rps),
            median(ref.manifest_rps), "r/s",
            target=MANIFEST_TARGET),
    ]  # fmt: skip
    print_table(
        f"OCI /v2, {SIZE / MiB:.0f} MiB blob, {ROUNDS} round(s), arbiter workers={WORKERS}, "
        f"policy engine={server_engine()}, blobs sent by "
        f"{'the download listener' if DOWNLOADS else 'the app server'}",
        rows,
        anchor="docker-registry",
    )
    return rows


def save(figures: dict[str, Figures], rows: list[Row]) -> None:
    save_results(
        RESULTS,
        {
            "size": SIZE,
            "rounds": ROUNDS,
            "workers": WORKERS,
            "engine": server_engine(),
            "downloads": DOWNLOADS,
        },
        dict(figures),
        rows,
    )


def main() -> None:
    tune_httpx_reads()
    admin_token = "arb_bench_" + secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="arbiter-oci-bench-", dir=SCRATCH) as scratch:
        workdir = Path(scratch)
        print(f"writing a {SIZE / MiB:.0f} MiB random file in {workdir} ...", flush=True)
        path = workdir / "big.bin"
        write_random_file(path, SIZE)
        targets = [arbiter(workdir, admin_token), reference(workdir)]
        figures = {t.name: Figures() for t in targets}
        with httpx.Client(timeout=TIMEOUT, follow_redirects=True) as client:
            for target in targets:
                target.server.start()
            try:
                prepare_arbiter(client, targets[0], admin_token)
                client.get(f"{targets[1].url}/v2/").raise_for_status()
                big_rounds(client, targets, path, figures)
                small_pulls(client, targets, figures)
                urls = {t.name: push_manifest(client, t) for t in targets}
                manifest_rounds(targets, urls, figures)
            except BaseException:
                for target in targets:
                    print(target.server.log_tail())
                raise
            finally:
                for target in targets:
                    target.server.stop()
        rows = report(figures)
        save(figures, rows)
        if any(row.verdict == "MISSED" for row in rows):
            print("\nat least one target was missed (see above)")


if __name__ == "__main__":
    main()
