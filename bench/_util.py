"""Shared helpers for the benchmarks: ports, server processes, RSS, timing, tables.

Every benchmark compares Arbiter with an anchor measured in the same run, on
the same machine, so the ratio means something even when absolute numbers
drift with the machine's load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psutil

MB = 1_000_000
MiB = 1024 * 1024
GiB = 1024 * MiB
READ_CHUNK = MiB


def server_workers() -> int:
    """Arbiter's granian workers for the request-rate benchmarks: one per core by default.

    The anchors (docker-registry in Go, Verdaccio's libuv pool) use every core
    on their own; a Python server is deployed with ``--workers`` = cores to do
    the same. ``ARBITER_BENCH_WORKERS=1`` measures the single-worker default.
    """
    return int(os.environ.get("ARBITER_BENCH_WORKERS") or os.cpu_count() or 1)


def server_engine() -> str:
    """The policy engine Arbiter serves with in the request-rate benchmarks.

    ``wasm`` (OPA's own compiler, evaluated in-process) by default: the engine
    a deployment that cares about request rate runs. ``ARBITER_BENCH_ENGINE=embedded``
    measures the regopy default of ``arbiter serve``.
    """
    return os.environ.get("ARBITER_BENCH_ENGINE") or "wasm"


def arbiter_server(
    workdir: Path, admin_token: str, workers: int, env: dict[str, str] | None = None
) -> ServerProcess:
    """``arbiter serve`` on a free loopback port with its data under ``workdir``."""
    binary = Path(sys.executable).with_name("arbiter")
    command = [str(binary)] if binary.exists() else [sys.executable, "-m", "registry.cli.main"]
    port = free_port()
    data = workdir / "arbiter-data"
    return ServerProcess(
        "arbiter",
        [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--data", str(data)],
        port,
        workdir / "arbiter.log",
        env={
            "ARBITER_BOOTSTRAP_TOKEN": admin_token,
            "ARBITER_LOG_LEVEL": "warning",
            "ARBITER_WORKERS": str(workers),
            "ARBITER_POLICY_ENGINE": server_engine(),
            **(env or {}),
        },
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen[bytes]) -> None:
    """Return once ``host:port`` accepts connections; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} on start")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout:.0f} s")


@dataclass
class ServerProcess:
    """A server subprocess in its own process group, with its output in a log file.

    Use as a context manager: it waits for the port on entry and stops the
    whole group (granian forks workers) on exit.
    """

    name: str
    args: Sequence[str]
    port: int
    log_path: Path
    env: Mapping[str, str] | None = None
    host: str = "127.0.0.1"
    start_timeout: float = 60.0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    def start(self) -> ServerProcess:
        environment = {**os.environ, **(self.env or {})}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                list(self.args),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )
        try:
            wait_for_port(self.host, self.port, self.start_timeout, self.process)
        except BaseException:
            self.stop()
            print(self.log_tail())
            raise
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- last lines of {self.log_path} ---\n" + "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def tree_rss_by_pid(pid: int) -> dict[int, int]:
    """Resident memory of a process and each of its descendants, in bytes, by pid."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    sizes: dict[int, int] = {}
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            sizes[process.pid] = process.memory_info().rss
    return sizes


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    return sum(tree_rss_by_pid(pid).values())


class RssSampler:
    """Sample the RSS of a process tree in a thread; keep the peaks.

    A context manager: ``baseline`` is the tree's RSS on entry, ``peak`` the
    largest sum seen inside the block and ``peak_process`` the largest single
    process (a granian worker moves the bytes; its parent only supervises).
    """

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self.peak_process = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def sample(self) -> None:
        sizes = tree_rss_by_pid(self.pid)
        self.peak = max(self.peak, sum(sizes.values()))
        self.peak_process = max(self.peak_process, *sizes.values(), 0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.baseline = tree_rss(self.pid)
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def mb_per_s(size: int, seconds: float) -> float:
    return size / MB / seconds if seconds > 0 else float("inf")


def settle_writeback() -> None:
    """Write out what earlier steps left dirty, before the next timed one.

    A reference registry leaves each gigabyte it receives dirty in the page
    cache; Arbiter fsyncs every blob and an audit event per request, and each
    of those fsyncs then waited behind the kernel writing that backlog out
    (a 1 GiB push took 3.3 s instead of 1.6 s right after the reference's).
    Every timed step starts clean instead.
    """
    os.sync()


def write_random_file(path: Path, size: int) -> hashlib._Hash:
    """Write ``size`` incompressible bytes to ``path``; return their sha256 (to extend)."""
    hasher = hashlib.sha256()
    block = os.urandom(4 * MiB)
    counter = 0
    with path.open("wb") as file:
        remaining = size
        while remaining > 0:
            # A fresh prefix per block so no two blocks are equal (dedup-proof).
            piece = (counter.to_bytes(8, "big") + block[8:])[:remaining]
            hasher.update(piece)
            file.write(piece)
            remaining -= len(piece)
            counter += 1
    return hasher


def iter_file(path: Path, suffix: bytes = b"", chunk: int = READ_CHUNK) -> Iterator[bytes]:
    """Stream a file from disk in large chunks, then ``suffix`` (a streaming request body)."""
    with path.open("rb", buffering=0) as file:
        while data := file.read(chunk):
            yield data
    if suffix:
        yield suffix


def curl_download(url: str, headers: Mapping[str, str]) -> int:
    """Download ``url`` to /dev/null with curl (a C client, following redirects); the byte count."""
    args = ["curl", "-sS", "--fail", "--location", "-o", "/dev/null", "-w", "%{size_download}"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    done = subprocess.run([*args, url], capture_output=True, check=True)
    return int(done.stdout)


def tune_httpx_reads(num_bytes: int = READ_CHUNK) -> None:
    """Let httpcore read the socket in ``num_bytes`` pieces instead of 64 KiB.

    At 64 KiB the Python client, not the server, caps a loopback download near
    0.5-0.8 GB/s on a small machine; both servers are measured with the same
    client either way.
    """
    with contextlib.suppress(ImportError, AttributeError):
        from httpcore._sync.http11 import HTTP11Connection

        HTTP11Connection.READ_NUM_BYTES = num_bytes


@dataclass(frozen=True)
class Row:
    """One line of a results table: ours against the anchor's, and the target ratio."""

    metric: str
    ours: float
    anchor: float
    unit: str
    higher_is_better: bool = True
    target: float | None = None

    @property
    def ratio(self) -> float:
        if self.higher_is_better:
            return self.ours / self.anchor if self.anchor else float("inf")
        return self.anchor / self.ours if self.ours else float("inf")

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "ok" if self.ratio >= self.target else "MISSED"


def print_table(
    title: str, rows: Sequence[Row], ours: str = "arbiter", anchor: str = "anchor"
) -> None:
    """Print ``metric | ours | anchor | ratio | target`` (ratio > 1 means Arbiter is better)."""
    header = (f"{'metric':<28}", f"{ours:>14}", f"{anchor:>16}", f"{'ratio':>7}", "  target")
    print(f"\n{title}")
    print("".join(header))
    print("-" * 80)
    for row in rows:
        target = f"  >= {row.target:g}x {row.verdict}" if row.target is not None else ""
        digits = 2 if row.unit == "s" else 1
        print(
            f"{row.metric:<28}{row.ours:>10.{digits}f} {row.unit:<4}"
            f"{row.anchor:>11.{digits}f} {row.unit:<4}{row.ratio:>6.2f}x{target}"
        )


def print_limit(metric: str, value: float, limit: float, unit: str) -> bool:
    """Print a value against an absolute ceiling; ``True`` when within it."""
    within = value < limit
    verdict = "ok" if within else "MISSED"
    print(f"{metric:<28}{value:>10.1f} {unit:<3}  limit < {limit:g} {unit} {verdict}")
    return within


def save_results(
    path: Path, settings: dict[str, object], figures: dict[str, object], rows: Sequence[Row]
) -> None:
    """Keep a run's figures as JSON beside the printed table (``bench/results/``)."""
    path.parent.mkdir(exist_ok=True)
    document = {
        **settings,
        "servers": {name: vars(f) for name, f in figures.items()},
        "rows": [
            {
                "metric": r.metric,
                "ours": r.ours,
                "anchor": r.anchor,
                "unit": r.unit,
                "ratio": r.ratio,
                "target": r.target,
            }
            for r in rows
        ],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def wrk_rate(
    what: str,
    label: str,
    url: str,
    headers: Mapping[str, str],
    *,
    seconds: int,
    connections: int = 16,
    max_error_share: float = 0.0,
) -> float:
    """Requests/s of ``wrk -t2 -c<connections>`` on ``url``, printed as one line.

    Answers other than 2xx/3xx beyond ``max_error_share`` of the total fail the
    run; below it (a decision that timed out under load is a fail-closed 403)
    they are printed, not hidden.

    Dirty pages left by an earlier phase are written out first
    (:func:`settle_writeback`; measured, same code: manifest GETs at 439 r/s
    right after the 1 GiB rounds, 559 r/s after a sync).
    """
    settle_writeback()
    wrk = shutil.which("wrk") or "/usr/bin/wrk"
    args = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    done = subprocess.run([*args, url], capture_output=True, text=True, check=True)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", done.stdout)
    total = re.search(r"(\d+) requests in", done.stdout)
    if errors and (total is None or int(errors[1]) > max_error_share * int(total[1])):
        raise RuntimeError(f"{label}: wrk saw errors\n{done.stdout}")
    if errors:
        print(f"  {label}: {errors[1]} of {total[1] if total else '?'} answers were not 2xx")
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if match is None:
        raise RuntimeError(f"wrk printed no rate:\n{done.stdout}")
    latency = re.search(r"Latency\s+(\S+)", done.stdout)
    print(f"  {what} {label:<24} {float(match[1]):8.1f} req/s "
          f"(mean latency {latency[1] if latency else '?'})", flush=True)  # fmt: skip
    return float(match[1])
