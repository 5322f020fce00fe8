"""Python packages: Arbiter's simple API against pypiserver serving the same packages.

Both servers run on loopback in one run and serve the same 500 projects
(wheels written here, ten releases of the measured project, one of every
other):

* ``arbiter serve`` (one granian worker, the default): every request decided
  by the policy and recorded in the audit log; repository ``bench`` is public,
  so anonymous requests are allowed (like pypiserver's ``-a .``), and
  the same page is also measured with a token (HTTP Basic, as pip sends it);
* ``pypi-server run -a . -P . --backend cached-dir`` (pypiserver with its
  ``cache`` extra and waitress, the setup its documentation recommends).

Measured:

* project page requests per second with 16 connections (``wrk -t2 -c16``,
  pip's ``Accept`` header, so Arbiter answers PEP 691 JSON and pypiserver its
  HTML), median of rounds alternating which server goes first;
* wall time of ``pip download --no-deps`` of 50 projects (new process, no
  cache: index page, PEP 658 metadata where offered, wheel), median of rounds.

Targets (issue R5): >= 1x pypiserver on both, with policy and audit on.

Knobs: ``ARBITER_BENCH_PACKAGES`` (500), ``ARBITER_BENCH_DOWNLOADS`` (50),
``ARBITER_BENCH_ROUNDS`` (3), ``ARBITER_BENCH_WRK_SECONDS`` (10),
``ARBITER_BENCH_ENGINE`` (the policy engine, default ``wasm``),
``ARBITER_BENCH_WORKERS`` (Arbiter's granian workers, one per core), ``ARBITER_BENCH_DIR``.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench._util import (
    Row,
    ServerProcess,
    Timer,
    arbiter_server,
    free_port,
    median,
    print_table,
    save_results,
    server_engine,
    server_workers,
    wrk_rate,
)

PACKAGES = int(os.environ.get("ARBITER_BENCH_PACKAGES", "500"))
DOWNLOADS = int(os.environ.get("ARBITER_BENCH_DOWNLOADS", "50"))
ROUNDS = int(os.environ.get("ARBITER_BENCH_ROUNDS", "3"))
WRK_SECONDS = int(os.environ.get("ARBITER_BENCH_WRK_SECONDS", "10"))
WORKERS = server_workers()
SCRATCH = os.environ.get("ARBITER_BENCH_DIR") or None
CONCURRENCY = 16
# wrk answers that may fail (a policy decision timed out under load: a fail-closed 403)
MAX_ERROR_SHARE = 0.01
RELEASES_OF_MEASURED = 10
TARGET = 1.0
REPOSITORY = "bench"
MEASURED = "bench-pkg-000"
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
RESULTS = Path(__file__).resolve().parent / "results" / "pypi.json"


@dataclass
class Figures:
    page_rps: list[float] = field(default_factory=list)
    page_rps_token: list[float] = field(default_factory=list)
    download_s: list[float] = field(default_factory=list)


# -- packages ------------------------------------------------------------------------


def _record(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def write_wheel(directory: Path, name: str, version: str) -> Path:
    """A small pure-Python wheel with METADATA, WHEEL and a correct RECORD."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    content = {
        f"{module}/__init__.py": f'VERSION = "{version}"\n'.encode()
        + os.urandom(512).hex().encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\nSummary: bench\n"
            "License-Expression: MIT\nRequires-Python: >=3.8\n\nA benchmark package.\n"
        ).encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = [_record(path, data) for path, data in content.items()] + [f"{dist_info}/RECORD,,"]
    content[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in content.items():
            archive.writestr(member, data)
    return path


def write_packages(directory: Path) -> list[Path]:
    directory.mkdir()
    files = [write_wheel(directory, MEASURED, f"1.{n}") for n in range(RELEASES_OF_MEASURED)]
    files += [write_wheel(directory, f"bench-pkg-{i:03d}", "1.0") for i in range(1, PACKAGES)]
    return files


# -- servers ---------------------------------------------------------------------------


def pypiserver(workdir: Path, packages: Path) -> ServerProcess:
    binary = Path(sys.executable).with_name("pypi-server")
    if not binary.exists():
        raise RuntimeError("pypiserver is not installed: pip install 'pypiserver[cache]' waitress")
    port = free_port()
    return ServerProcess(
        "pypiserver",
        [str(binary), "run", "-p", str(port), "-i", "127.0.0.1", "-a", ".", "-P", ".",
         "--disable-fallback", "--hash-algo", "sha256", "--backend", "cached-dir",
         "--log-stream", "none", str(packages)],
        port,
        workdir / "pypiserver.log",
    )  # fmt: skip


def upload_all(server: ServerProcess, admin_token: str, files: list[Path]) -> None:
    """Create the public repository and upload every wheel through the legacy upload API."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(timeout=120) as client:
        created = client.post(
            f"{server.url}/api/v1/repositories",
            json={"name": REPOSITORY, "format": "pypi", "labels": {"public": "true"}},
            headers=headers,
        )
        created.raise_for_status()

        def upload(path: Path) -> None:
            name, version = path.name.split("-")[:2]
            form = {":action": "file_upload", "protocol_version": "1", "name": name,
                    "version": version, "filetype": "bdist_wheel", "pyversion": "py3"}  # fmt: skip
            files = {"content": (path.name, path.read_bytes(), "application/octet-stream")}
            for _attempt in range(3):  # a loaded machine may time a decision out (fail closed)
                response = client.post(
                    f"{server.url}/pypi/{REPOSITORY}/", data=form, files=files, headers=headers
                )
                if "policy engine unavailable" not in response.text:
                    break
            if response.status_code != 200:
                raise RuntimeError(f"upload of {path.name}: {response.status_code} {response.text}")

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(upload, files))


# -- measurements ----------------------------------------------------------------------


def page_rate(label: str, url: str, headers: dict[str, str]) -> float:
    return wrk_rate("project page", label, url, headers, seconds=WRK_SECONDS,
                    connections=CONCURRENCY, max_error_share=MAX_ERROR_SHARE)  # fmt: skip


def pip_download(index: str, target: Path) -> float:
    """Seconds for one ``pip download`` of :data:`DOWNLOADS` projects, in a new process."""
    names = [f"bench-pkg-{i:03d}" for i in range(1, DOWNLOADS + 1)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    args = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "-q",
            "--only-binary", ":all:", "-d", str(target), "--index-url", index, *names]  # fmt: skip
    with Timer() as timer:
        done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip download from {index} failed:\n{done.stdout}\n{done.stderr}")
    downloaded = len(list(target.glob("*.whl")))
    if downloaded != DOWNLOADS:
        raise RuntimeError(f"pip downloaded {downloaded} wheels, not {DOWNLOADS}")
    return timer.seconds


def report(figures: dict[str, Figures]) -> list[Row]:
    ours, ref = figures["arbiter"], figures["pypiserver"]
    rows = [
        Row("project page, 16 conns", median(ours.page_rps), median(ref.page_rps), "r/s",
            target=TARGET),
        Row("  same, with a token", median(ours.page_rps_token), median(ref.page_rps), "r/s"),
        Row(f"pip download {DOWNLOADS} (median)", median(ours.download_s),
            median(ref.download_s), "s", higher_is_better=False, target=TARGET),
    ]  # fmt: skip
    print_table(
        f"PyPI simple API, {PACKAGES} projects, {ROUNDS} round(s), arbiter workers={WORKERS}, "
        f"policy engine={server_engine()}",
        rows,
        anchor="pypiserver",
    )
    return rows


def save(figures: dict[str, Figures], rows: list[Row]) -> None:
    save_results(
        RESULTS,
        {
            "packages": PACKAGES,
            "downloads": DOWNLOADS,
            "rounds": ROUNDS,
            "workers": WORKERS,
            "engine": server_engine(),
        },
        dict(figures),
        rows,
    )


def measure(workdir: Path, admin_token: str) -> dict[str, Figures]:
    files = write_packages(workdir / "packages")
    servers = {
        "arbiter": arbiter_server(workdir, admin_token, WORKERS),
        "pypiserver": pypiserver(workdir, workdir / "packages"),
    }
    figures = {name: Figures() for name in servers}
    token = base64.b64encode(f"admin:{admin_token}".encode()).decode()
    pages = {
        "arbiter": f"{servers['arbiter'].url}/pypi/{REPOSITORY}/simple/{MEASURED}/",
        "pypiserver": f"{servers['pypiserver'].url}/simple/{MEASURED}/",
    }
    indexes = {
        "arbiter": f"{servers['arbiter'].url}/pypi/{REPOSITORY}/simple/",
        "pypiserver": f"{servers['pypiserver'].url}/simple/",
    }
    try:
        for server in servers.values():
            server.start()
        print(f"uploading {len(files)} wheels to arbiter ...", flush=True)
        upload_all(servers["arbiter"], admin_token, files)
        order = list(servers)
        for round_no in range(ROUNDS):
            for name in order if round_no % 2 == 0 else order[::-1]:
                target = workdir / f"downloads-{name}-{round_no}"
                seconds = pip_download(indexes[name], target)
                figures[name].download_s.append(seconds)
                print(f"  pip download {name:<24} {seconds:8.2f} s", flush=True)
                shutil.rmtree(target)
        accept = {"Accept": PIP_ACCEPT}
        authenticated = {**accept, "Authorization": f"Basic {token}"}
        for round_no in range(ROUNDS):
            for name in order if round_no % 2 == 0 else order[::-1]:
                figures[name].page_rps.append(page_rate(name, pages[name], accept))
            figures["arbiter"].page_rps_token.append(
                page_rate("arbiter (token)", pages["arbiter"], authenticated)
            )
    except BaseException:
        for server in servers.values():
            print(server.log_tail())
        raise
    finally:
        for server in servers.values():
            server.stop()
    return figures


def main() -> None:
    admin_token = "arb_bench_" + secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="arbiter-pypi-bench-", dir=SCRATCH) as scratch:
        figures = measure(Path(scratch), admin_token)
    rows = report(figures)
    save(figures, rows)
    if any(row.verdict == "MISSED" for row in rows):
        print("\nat least one target was missed (see above)")


if __name__ == "__main__":
    main()
