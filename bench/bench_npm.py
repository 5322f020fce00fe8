"""npm: Arbiter's packuments against Verdaccio serving the same packages, in one run.

Both registries run on loopback and receive the same publish documents
(written here as ``npm publish`` writes them): one package with 20 versions
that is measured, and 30 small packages that a project installs.

* ``arbiter serve`` (one granian worker per core): every request decided by the policy
  and recorded in the audit log, the npm repository public (anonymous reads,
  like Verdaccio's ``access: $all``) and also measured with a token;
* Verdaccio 6 (the npm package, installed with npm into
  ``$ARBITER_TOOLS/verdaccio`` on first use), filesystem storage, no uplinks.

Measured:

* abbreviated packument GETs per second (``Accept:
  application/vnd.npm.install-v1+json``, as ``npm install`` asks) with 16
  connections (``wrk -t2 -c16``), median of rounds alternating who goes first;
* wall time of ``npm install`` of a project depending on the 30 packages
  (empty cache each time; median of rounds), without a target.

Target (issue R5): packument requests per second >= 1x Verdaccio.

Knobs: ``ARBITER_BENCH_ROUNDS`` (3), ``ARBITER_BENCH_WRK_SECONDS`` (10),
``ARBITER_BENCH_ENGINE`` (the policy engine, default ``wasm``),
``ARBITER_BENCH_WORKERS`` (one per core), ``ARBITER_BENCH_DIR``, ``ARBITER_TOOLS``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

ROUNDS = int(os.environ.get("ARBITER_BENCH_ROUNDS", "3"))
WRK_SECONDS = int(os.environ.get("ARBITER_BENCH_WRK_SECONDS", "10"))
WORKERS = server_workers()
SCRATCH = os.environ.get("ARBITER_BENCH_DIR") or None
TOOLS = Path(os.environ.get("ARBITER_TOOLS", Path.home() / ".cache" / "arbiter-tools"))
VERDACCIO_VERSION = "6.8.0"
# verdaccio-audit asks for node-fetch@cjs, a dist-tag the registry this
# machine reaches does not carry ("No matching version found for
# node-fetch@cjs", ETARGET); the override pins the version that tag names.
VERDACCIO_OVERRIDES = {"node-fetch": "2.7.0"}
CONCURRENCY = 16
# wrk answers that may fail (a policy decision timed out under load: a fail-closed 403)
MAX_ERROR_SHARE = 0.01
VERSIONS = 20
INSTALLED = 30
TARGET = 1.0
REPOSITORY = "benchjs"
MEASURED = "bench-measured"
ABBREVIATED = "application/vnd.npm.install-v1+json"
RESULTS = Path(__file__).resolve().parent / "results" / "npm.json"


@dataclass
class Figures:
    packument_rps: list[float] = field(default_factory=list)
    packument_rps_token: list[float] = field(default_factory=list)
    install_s: list[float] = field(default_factory=list)


@dataclass
class Registry:
    name: str
    server: ServerProcess
    path: str  # the registry's path on the server ("/npm/benchjs" or "")
    token: str = ""

    @property
    def url(self) -> str:
        return f"{self.server.url}{self.path}/"


# -- packages ---------------------------------------------------------------------------


def tarball(manifest: dict[str, Any]) -> bytes:
    members = {
        "package/package.json": json.dumps(manifest).encode(),
        "package/index.js": f"module.exports = {json.dumps(manifest['version'])};\n".encode()
        + f"// {secrets.token_hex(256)}\n".encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def publish_document(name: str, version: str) -> dict[str, Any]:
    """What ``npm publish`` sends for ``name@version``."""
    manifest = {"name": name, "version": version, "description": "bench", "license": "MIT",
                "main": "index.js"}  # fmt: skip
    data = tarball(manifest)
    version_doc = {**manifest, "_id": f"{name}@{version}", "dist": {
        "integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(),
        "shasum": hashlib.sha1(data).hexdigest(),
        "tarball": f"http://registry.invalid/{name}/-/{name}-{version}.tgz",
    }}  # fmt: skip
    return {
        "_id": name,
        "name": name,
        "description": "bench",
        "dist-tags": {"latest": version},
        "versions": {version: version_doc},
        "access": "public",
        "_attachments": {
            f"{name}-{version}.tgz": {
                "content_type": "application/octet-stream",
                "data": base64.b64encode(data).decode(),
                "length": len(data),
            }
        },
    }


def documents() -> list[dict[str, Any]]:
    docs = [publish_document(MEASURED, f"1.{n}.0") for n in range(VERSIONS)]
    docs += [publish_document(f"bench-dep-{i:02d}", "1.0.0") for i in range(INSTALLED)]
    return docs


def publish_all(client: httpx.Client, registry: Registry, docs: list[dict[str, Any]]) -> None:
    headers = {"Authorization": f"Bearer {registry.token}", "Content-Type": "application/json"}
    for doc in docs:
        response = client.put(f"{registry.url}{doc['name']}", content=json.dumps(doc),
                              headers=headers)  # fmt: skip
        if response.status_code not in (200, 201):
            raise RuntimeError(
                f"{registry.name}: publish {doc['name']}: {response.status_code} {response.text}"
            )


# -- servers ---------------------------------------------------------------------------


def arbiter(workdir: Path, admin_token: str) -> Registry:
    server = arbiter_server(workdir, admin_token, WORKERS)
    return Registry("arbiter", server, f"/npm/{REPOSITORY}", admin_token)


def install_verdaccio() -> Path:
    """Verdaccio's binary, installed with npm into the tools directory on first use."""
    home = TOOLS / "verdaccio"
    binary = home / "node_modules" / ".bin" / "verdaccio"
    if binary.exists():
        return binary
    home.mkdir(parents=True, exist_ok=True)
    manifest = {"name": "verdaccio-anchor", "version": "0.0.0", "private": True,
                "dependencies": {"verdaccio": VERDACCIO_VERSION},
                "overrides": VERDACCIO_OVERRIDES}  # fmt: skip
    (home / "package.json").write_text(json.dumps(manifest, indent=2))
    npm = shutil.which("npm") or "npm"
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--registry", "https://registry.npmjs.org/"],
        cwd=home, capture_output=True, text=True, env={**os.environ, "HOME": str(home)},
    )  # fmt: skip
    if done.returncode != 0 or not binary.exists():
        raise RuntimeError(f"npm install verdaccio@{VERDACCIO_VERSION} failed:\n{done.stderr}")
    return binary


def verdaccio(workdir: Path) -> Registry:
    binary = install_verdaccio()
    port = free_port()
    config = workdir / "verdaccio.yaml"
    config.write_text(
        f"storage: {workdir / 'verdaccio-storage'}\n"
        f"auth:\n  htpasswd:\n    file: {workdir / 'htpasswd'}\n    max_users: 10\n"
        "uplinks: {}\n"
        "packages:\n"
        "  '@*/*':\n    access: $all\n    publish: $authenticated\n"
        "  '**':\n    access: $all\n    publish: $authenticated\n"
        "web:\n  enable: false\n"
        "max_body_size: 100mb\n"
        "log: {type: stdout, format: json, level: error}\n"
        f"listen: 127.0.0.1:{port}\n"
    )
    server = ServerProcess("verdaccio", [str(binary), "--config", str(config)], port,
                           workdir / "verdaccio.log")  # fmt: skip
    return Registry("verdaccio", server, "")


def verdaccio_token(client: httpx.Client, registry: Registry) -> str:
    """``npm adduser`` against Verdaccio: a couchdb-style user document, a token back."""
    password = secrets.token_hex(16)
    response = client.put(
        f"{registry.url}-/user/org.couchdb.user:bench",
        json={"name": "bench", "password": password, "type": "user", "roles": []},
    )
    response.raise_for_status()
    return str(response.json()["token"])


def create_repository(client: httpx.Client, registry: Registry) -> None:
    response = client.post(
        f"{registry.server.url}/api/v1/repositories",
        json={"name": REPOSITORY, "format": "npm", "labels": {"public": "true"}},
        headers={"Authorization": f"Bearer {registry.token}"},
    )
    response.raise_for_status()


# -- measurements ----------------------------------------------------------------------


def packument_rate(label: str, url: str, headers: dict[str, str]) -> float:
    return wrk_rate("packument", label, url, headers, seconds=WRK_SECONDS,
                    connections=CONCURRENCY, max_error_share=MAX_ERROR_SHARE)  # fmt: skip


def npm_install(registry: Registry, project: Path, cache: Path) -> float:
    """Seconds for ``npm install`` of the project, anonymous, with an empty cache."""
    npmrc = project.parent / f"{registry.name}.npmrc"
    npmrc.write_text(f"registry={registry.url}\naudit=false\nfund=false\nupdate-notifier=false\n")
    for leftover in ("node_modules", "package-lock.json"):
        shutil.rmtree(project / leftover, ignore_errors=True)
        (project / leftover).unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_")}
    env.update(NPM_CONFIG_USERCONFIG=str(npmrc), NPM_CONFIG_CACHE=str(cache),
               HOME=str(project.parent))  # fmt: skip
    npm = shutil.which("npm") or "npm"
    with Timer() as timer:
        done = subprocess.run([npm, "install", "--prefer-online"], cwd=project, env=env,
                              capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"npm install from {registry.name} failed:\n{done.stderr}")
    shutil.rmtree(cache, ignore_errors=True)
    return timer.seconds


def report(figures: dict[str, Figures]) -> list[Row]:
    ours, ref = figures["arbiter"], figures["verdaccio"]
    rows = [
        Row("packument GET, 16 conns", median(ours.packument_rps), median(ref.packument_rps),
            "r/s", target=TARGET),
        Row("  same, with a token", median(ours.packument_rps_token),
            median(ref.packument_rps), "r/s"),
        Row(f"npm install {INSTALLED} (median)", median(ours.install_s), median(ref.install_s),
            "s", higher_is_better=False),
    ]  # fmt: skip
    print_table(
        f"npm registry, {VERSIONS} versions measured, {ROUNDS} round(s), workers={WORKERS}, "
        f"policy engine={server_engine()}",
        rows,
        anchor="verdaccio",
    )
    return rows


def save(figures: dict[str, Figures], rows: list[Row]) -> None:
    save_results(
        RESULTS,
        {
            "rounds": ROUNDS,
            "workers": WORKERS,
            "engine": server_engine(),
            "verdaccio": VERDACCIO_VERSION,
        },
        dict(figures),
        rows,
    )


def measure(workdir: Path, admin_token: str) -> dict[str, Figures]:
    registries = [arbiter(workdir, admin_token), verdaccio(workdir)]
    figures = {r.name: Figures() for r in registries}
    project = workdir / "project"
    project.mkdir()
    dependencies = {f"bench-dep-{i:02d}": "^1.0.0" for i in range(INSTALLED)}
    (project / "package.json").write_text(json.dumps(
        {"name": "bench-project", "version": "0.0.0", "private": True,
         "dependencies": dependencies}))  # fmt: skip
    docs = documents()
    try:
        with httpx.Client(timeout=120) as client:
            for registry in registries:
                registry.server.start()
            create_repository(client, registries[0])
            registries[1].token = verdaccio_token(client, registries[1])
            for registry in registries:
                publish_all(client, registry, docs)
        for round_no in range(ROUNDS):
            order = registries if round_no % 2 == 0 else registries[::-1]
            for registry in order:
                seconds = npm_install(registry, project, workdir / f"cache-{registry.name}")
                figures[registry.name].install_s.append(seconds)
                print(f"  npm install {registry.name:<24} {seconds:8.2f} s", flush=True)
        accept = {"Accept": ABBREVIATED}
        ours = registries[0]
        authenticated = {**accept, "Authorization": f"Bearer {ours.token}"}
        for round_no in range(ROUNDS):
            for registry in registries if round_no % 2 == 0 else registries[::-1]:
                rate = packument_rate(registry.name, f"{registry.url}{MEASURED}", accept)
                figures[registry.name].packument_rps.append(rate)
            figures["arbiter"].packument_rps_token.append(
                packument_rate("arbiter (token)", f"{ours.url}{MEASURED}", authenticated)
            )
    except BaseException:
        for registry in registries:
            print(registry.server.log_tail())
        raise
    finally:
        for registry in registries:
            registry.server.stop()
    return figures


def main() -> None:
    admin_token = "arb_bench_" + secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="arbiter-npm-bench-", dir=SCRATCH) as scratch:
        figures = measure(Path(scratch), admin_token)
    rows = report(figures)
    save(figures, rows)
    if any(row.verdict == "MISSED" for row in rows):
        print("\nat least one target was missed (see above)")


if __name__ == "__main__":
    main()
