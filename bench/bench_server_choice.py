"""Which ASGI server? A bare Starlette app under granian and under uvicorn.

DESIGN.md chose granian from a measured table: a 1 GiB ``PUT`` (hash + write +
fsync) and a 1 GiB ``GET`` answered by ``FileResponse``, which granian sends
zero-copy through the ASGI ``http.response.pathsend`` extension. This
experiment re-measures that table on the machine at hand, with the real blob
store (``bench/_bare_app.py``) and nothing else in the app.

Servers: granian with the asyncio loop, granian with uvloop and uvicorn with
httptools + uvloop (the last two only when uvloop / uvicorn are installed:
``pip install 'uvicorn[standard]'``). The client is curl when present (a C
client, so the servers and not the client set the pace; ``ARBITER_BENCH_CLIENT
=httpx`` to use httpx). Rounds alternate between servers.
Knobs: ``ARBITER_BENCH_SIZE_MB``, ``ARBITER_BENCH_ROUNDS``, ``ARBITER_BENCH_DIR``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench._util import (
    MiB,
    Row,
    ServerProcess,
    Timer,
    free_port,
    iter_file,
    mb_per_s,
    median,
    print_table,
    tune_httpx_reads,
    write_random_file,
)

SIZE = int(os.environ.get("ARBITER_BENCH_SIZE_MB", "1024")) * MiB
ROUNDS = int(os.environ.get("ARBITER_BENCH_ROUNDS", "3"))
SCRATCH = os.environ.get("ARBITER_BENCH_DIR") or None
CLIENT = os.environ.get("ARBITER_BENCH_CLIENT") or ("curl" if shutil.which("curl") else "httpx")
APP = "bench._bare_app:app"
REPO_ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = httpx.Timeout(900.0, connect=10.0)


@dataclass
class Candidate:
    """One server configuration serving the bare app."""

    name: str
    args: list[str]
    server: ServerProcess | None = None
    put_s: list[float] = field(default_factory=list)
    get_s: list[float] = field(default_factory=list)
    pathsend: bool = False


def candidates() -> tuple[list[Candidate], list[str]]:
    """Every configuration that can run here, and notes on those that cannot."""
    python = sys.executable
    granian = [python, "-m", "granian", "--interface", "asgi", "--no-ws", "--log-level", "warning"]
    found = [Candidate("granian (asyncio)", [*granian, "--loop", "asyncio"])]
    notes: list[str] = []
    have_uvloop = importlib.util.find_spec("uvloop") is not None
    if have_uvloop:
        found.append(Candidate("granian (uvloop)", [*granian, "--loop", "uvloop"]))
    if importlib.util.find_spec("uvicorn") is not None and have_uvloop:
        uvicorn = [python, "-m", "uvicorn", "--loop", "uvloop", "--http", "httptools"]
        found.append(Candidate("uvicorn (httptools, uvloop)", [*uvicorn, "--no-access-log"]))
    else:
        notes.append("uvicorn/uvloop not installed: pip install 'uvicorn[standard]' to compare")
    return found, notes


def start(candidate: Candidate, workdir: Path, index: int) -> None:
    port = free_port()
    root = workdir / f"store-{index}"
    env = {
        "ARBITER_BENCH_BARE_ROOT": str(root),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    args = [*candidate.args, "--host", "127.0.0.1", "--port", str(port), APP]
    log = workdir / f"server-{index}.log"
    candidate.server = ServerProcess(candidate.name, args, port, log, env=env).start()


def curl(*args: str) -> str:
    done = subprocess.run(
        ["curl", "-sS", "--fail", "-o", "/dev/null", *args], capture_output=True, check=True
    )
    return done.stdout.decode()


def put(client: httpx.Client, url: str, payload: Path, sha256: str) -> None:
    headers = {"X-Checksum-Sha256": sha256, "Content-Type": "application/octet-stream"}
    if CLIENT == "curl":
        curl(
            "-X",
            "PUT",
            "-T",
            str(payload),
            "-H",
            "Expect:",
            "-H",
            f"X-Checksum-Sha256: {sha256}",
            url,
        )
        return
    response = client.put(
        url, content=iter_file(payload), headers={**headers, "Content-Length": str(SIZE)}
    )
    response.raise_for_status()


def get(client: httpx.Client, url: str) -> int:
    if CLIENT == "curl":
        return int(curl("-w", "%{size_download}", url))
    received = 0
    with client.stream("GET", url) as response:
        response.raise_for_status()
        for chunk in response.iter_raw(MiB):
            received += len(chunk)
    return received


def one_round(
    client: httpx.Client, servers: list[Candidate], payload: Path, sha256: str, round_no: int
) -> None:
    order = servers if round_no % 2 == 0 else servers[::-1]
    for candidate in order:
        assert candidate.server is not None
        url = candidate.server.url
        with Timer() as timer:
            put(client, f"{url}/blob", payload, sha256)
        candidate.put_s.append(timer.seconds)
        with Timer() as timer:
            received = get(client, f"{url}/blob/sha256:{sha256}")
        candidate.get_s.append(timer.seconds)
        if received != SIZE:
            raise RuntimeError(f"{candidate.name} served {received} bytes, expected {SIZE}")
        client.delete(f"{url}/blob/sha256:{sha256}").raise_for_status()
        print(
            f"  round {round_no + 1}/{ROUNDS} {candidate.name:<28} PUT {candidate.put_s[-1]:5.2f} s"
            f"  GET {candidate.get_s[-1]:5.2f} s",
            flush=True,
        )


def report(servers: list[Candidate]) -> None:
    print(
        f"\n{'server':<30}{'PUT median':>12}{'GET median':>12}{'PUT MB/s':>10}{'GET MB/s':>10}"
        "  pathsend"
    )
    for c in servers:
        put_s, get_s = median(c.put_s), median(c.get_s)
        print(
            f"{c.name:<30}{put_s:>10.2f} s{get_s:>10.2f} s{mb_per_s(SIZE, put_s):>10.0f}"
            f"{mb_per_s(SIZE, get_s):>10.0f}  {'yes' if c.pathsend else 'no'}"
        )
    anchor = next((c for c in servers if c.name.startswith("uvicorn")), None)
    if anchor is None:
        return
    for c in servers:
        if c is anchor:
            continue
        rows = [
            Row(
                f"PUT {SIZE / MiB:.0f} MiB (median)",
                median(c.put_s),
                median(anchor.put_s),
                "s",
                higher_is_better=False,
            ),
            Row(
                f"GET {SIZE / MiB:.0f} MiB (median)",
                median(c.get_s),
                median(anchor.get_s),
                "s",
                higher_is_better=False,
            ),
        ]
        print_table(
            f"{c.name} against uvicorn (ratio > 1: granian faster)",
            rows,
            ours=c.name.split()[0],
            anchor="uvicorn",
        )


def main() -> None:
    tune_httpx_reads()
    servers, notes = candidates()
    for note in notes:
        print(f"  note: {note}")
    print(f"  client: {CLIENT}; body {SIZE / MiB:.0f} MiB; {ROUNDS} round(s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="arbiter-bench-", dir=SCRATCH) as scratch:
        workdir = Path(scratch)
        payload = workdir / "big.bin"
        sha256 = write_random_file(payload, SIZE).hexdigest()
        try:
            for index, candidate in enumerate(servers):
                start(candidate, workdir, index)
            with httpx.Client(timeout=TIMEOUT) as client:
                for candidate in servers:
                    assert candidate.server is not None
                    answer = client.get(f"{candidate.server.url}/pathsend").json()
                    candidate.pathsend = bool(answer["pathsend"])
                for round_no in range(ROUNDS):
                    one_round(client, servers, payload, sha256, round_no)
        finally:
            for candidate in servers:
                if candidate.server is not None:
                    candidate.server.stop()
    report(servers)
