"""The npm CLI, unmodified, against a real ``arbiter serve`` on loopback.

npm runs with a HOME, cache and user config of the test's own, pointed at the
server under test for every scope, so it talks to nothing else; ``npm login``
is driven through a pseudo-terminal because npm reads the password from a TTY.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import pytest

from tests.registry.conftest import LIVE_ADMIN_TOKEN, LiveServer, server_with_repositories

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with server_with_repositories(
        tmp_path_factory.mktemp("npm-live") / "data",
        {"name": "js", "format": "npm"},
        {"name": "pubjs", "format": "npm", "labels": {"public": "true"}},
    ) as server:
        yield server


@pytest.fixture(scope="module")
def npm() -> str:
    found = shutil.which("npm")
    if found is None:
        pytest.fail("npm is not installed", pytrace=False)
    return found


def registry_url(server: LiveServer, repo: str = "js") -> str:
    return f"{server.url}/npm/{repo}/"


def write_npmrc(path: Path, server: LiveServer, repo: str = "js", token: str | None = None) -> None:
    url = registry_url(server, repo)
    lines = [
        f"registry={url}",
        f"@demo:registry={url}",
        "audit=false",
        "fund=false",
        "update-notifier=false",
        "progress=false",
    ]
    if token:
        lines.append(f"//{url.removeprefix('http://')}:_authToken={token}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def env(tmp_path: Path, registry: LiveServer) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    npmrc = tmp_path / "npmrc"
    write_npmrc(npmrc, registry, token=LIVE_ADMIN_TOKEN)
    return {
        "HOME": str(home),
        "NPM_CONFIG_USERCONFIG": str(npmrc),
        "NPM_CONFIG_GLOBALCONFIG": str(tmp_path / "global-npmrc"),
        "NPM_CONFIG_CACHE": str(tmp_path / "npm-cache"),
        "NO_COLOR": "1",
        "CI": "1",
    }


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_")}
    done = subprocess.run(
        list(args), env={**inherited, **env}, cwd=cwd, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    if check and done.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited {done.returncode}\n--- stdout\n{done.stdout}\n"
            f"--- stderr\n{done.stderr}",
            pytrace=False,
        )
    return done


def package(directory: Path, name: str, version: str, **fields: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {"name": name, "version": version, "main": "index.js", **fields}
    (directory / "package.json").write_text(json.dumps(manifest, indent=2))
    (directory / "index.js").write_text(f"module.exports = {json.dumps(name + '@' + version)};\n")
    return directory


def test_login_whoami_through_a_terminal(
    registry: LiveServer, npm: str, env: dict[str, str], tmp_path: Path
) -> None:
    npmrc = tmp_path / "login-npmrc"
    write_npmrc(npmrc, registry)
    login_env = {**env, "NPM_CONFIG_USERCONFIG": str(npmrc)}
    assert run([npm, "whoami"], env=login_env, check=False).returncode != 0
    output, status = _login(npm, login_env, "admin", LIVE_ADMIN_TOKEN)
    assert status == 0, output
    assert "Logged in on" in output
    host = registry.url.removeprefix("http://")
    assert f"//{host}/npm/js/:_authToken={LIVE_ADMIN_TOKEN}" in npmrc.read_text()
    assert run([npm, "whoami"], env=login_env).stdout.strip() == "admin"
    output, status = _login(npm, login_env, "admin", "not-a-token")
    assert status != 0


def _login(npm: str, env: Mapping[str, str], user: str, password: str) -> tuple[str, int]:
    """``npm login`` answered through a pseudo-terminal, as a person would."""
    inherited = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_")}
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execvpe(npm, [npm, "login"], {**inherited, **env})
    output = b""

    def read_until(marker: bytes, timeout: float = 60) -> None:
        nonlocal output
        deadline = time.monotonic() + timeout
        while marker not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    output += os.read(fd, 4096)
                except OSError:
                    return

    read_until(b"Username:")
    os.write(fd, user.encode() + b"\r")
    read_until(b"Password:")
    os.write(fd, password.encode() + b"\r")
    read_until(b"\x00", timeout=60)  # until npm exits and the terminal closes
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return output.decode(errors="replace"), os.waitstatus_to_exitcode(status)


def test_publish_install_ci_tags_deprecate_unpublish(
    registry: LiveServer, npm: str, env: dict[str, str], tmp_path: Path
) -> None:
    lib = package(tmp_path / "lib", "@demo/lib", "1.0.0", license="MIT")
    out = run([npm, "publish", "--access", "public"], env=env, cwd=lib)
    assert "+ @demo/lib@1.0.0" in out.stdout
    package(lib, "@demo/lib", "1.1.0", license="MIT")
    run([npm, "publish", "--tag", "next"], env=env, cwd=lib)
    app_lib = package(tmp_path / "app-lib", "app-lib", "2.0.0", license="ISC",
                      dependencies={"@demo/lib": "^1.0.0"})  # fmt: skip
    run([npm, "publish"], env=env, cwd=app_lib)

    # Install with an empty cache, so every byte comes from the registry.
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text(
        json.dumps(
            {
                "name": "project",
                "version": "0.0.0",
                "private": True,
                "dependencies": {"app-lib": "^2.0.0"},
            }
        )
    )
    install_env = {**env, "NPM_CONFIG_CACHE": str(tmp_path / "install-cache")}
    run([npm, "install"], env=install_env, cwd=project)
    installed = project / "node_modules" / "@demo" / "lib" / "package.json"
    assert json.loads(installed.read_text())["version"] == "1.0.0"  # latest, not next
    lock = json.loads((project / "package-lock.json").read_text())
    resolved = lock["packages"]["node_modules/@demo/lib"]["resolved"]
    assert resolved == f"{registry.url}/npm/js/@demo/lib/-/lib-1.0.0.tgz"
    shutil.rmtree(project / "node_modules")
    ci_env = {**env, "NPM_CONFIG_CACHE": str(tmp_path / "ci-cache")}
    run([npm, "ci"], env=ci_env, cwd=project)
    assert installed.exists()

    tags = run([npm, "dist-tag", "ls", "@demo/lib"], env=env).stdout
    assert "latest: 1.0.0" in tags and "next: 1.1.0" in tags
    run([npm, "dist-tag", "add", "@demo/lib@1.1.0", "beta"], env=env)
    run([npm, "dist-tag", "rm", "@demo/lib", "next"], env=env)
    tags = run([npm, "dist-tag", "ls", "@demo/lib"], env=env).stdout
    assert "beta: 1.1.0" in tags and "next" not in tags

    run([npm, "deprecate", "@demo/lib@1.0.0", "please use 1.1.0"], env=env)
    shown = run([npm, "view", "@demo/lib@1.0.0", "deprecated"], env=env).stdout
    assert shown.strip() == "please use 1.1.0"

    run([npm, "unpublish", "@demo/lib@1.1.0"], env=env)
    versions = json.loads(run([npm, "view", "@demo/lib", "versions", "--json"], env=env).stdout)
    assert versions == "1.0.0" or versions == ["1.0.0"]
    run([npm, "unpublish", "app-lib", "--force"], env=env)
    gone = run([npm, "view", "app-lib"], env=env, check=False)
    assert gone.returncode != 0 and "E404" in gone.stderr

    headers = {"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"}
    lineage = httpx.get(f"{registry.url}/api/v1/lineage/js/@demo/lib/1.0.0", headers=headers).json()
    kinds = [(s["kind"], s["facts"].get("tag")) for s in lineage["steps"]]
    assert ("pushed", None) in kinds and ("tagged", "deprecated") in kinds
    assert lineage["pulls"]["count"] >= 2  # npm install and npm ci
    removed = httpx.get(f"{registry.url}/api/v1/lineage/js/@demo/lib/1.1.0", headers=headers).json()
    assert removed["status"] == "deleted"
    assert ("tagged", "beta") in [(s["kind"], s["facts"].get("tag")) for s in removed["steps"]]


def test_a_denied_publish_and_a_denied_install_show_the_policy_reason(
    registry: LiveServer, npm: str, env: dict[str, str], tmp_path: Path
) -> None:
    gpl = package(tmp_path / "gpl", "gpl-lib", "1.0.0", license="GPL-3.0-only")
    denied = run([npm, "publish"], env=env, cwd=gpl, check=False)
    assert denied.returncode != 0
    assert (
        "403 Forbidden - PUT " in denied.stderr
        and "denied by policy: license GPL-3.0-only is on the deny list" in denied.stderr
    )

    ok = package(tmp_path / "ok", "private-thing", "1.0.0", license="MIT")
    run([npm, "publish"], env=env, cwd=ok)
    headers = {"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"}
    user = httpx.post(f"{registry.url}/api/v1/users", json={"name": "stranger"}, headers=headers)
    assert user.status_code == 201, user.text
    token = httpx.post(
        f"{registry.url}/api/v1/users/stranger/tokens", json={}, headers=headers
    ).json()["token"]
    stranger_rc = tmp_path / "stranger-npmrc"
    write_npmrc(stranger_rc, registry, token=token)
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text(
        json.dumps({"name": "p", "version": "0.0.0", "dependencies": {"private-thing": "1.0.0"}})
    )
    stranger_env = {**env, "NPM_CONFIG_USERCONFIG": str(stranger_rc),
                    "NPM_CONFIG_CACHE": str(tmp_path / "stranger-cache")}  # fmt: skip
    refused = run([npm, "install"], env=stranger_env, cwd=project, check=False)
    assert refused.returncode != 0
    assert (
        "denied by policy: subject stranger holds no role that grants pull on repository js"
        in refused.stderr
    )


def test_anonymous_install_from_a_public_repository(
    registry: LiveServer, npm: str, env: dict[str, str], tmp_path: Path
) -> None:
    publisher_rc = tmp_path / "publisher-npmrc"
    write_npmrc(publisher_rc, registry, repo="pubjs", token=LIVE_ADMIN_TOKEN)
    publisher = {**env, "NPM_CONFIG_USERCONFIG": str(publisher_rc)}
    lib = package(tmp_path / "open", "open-thing", "3.1.4", license="BSD-3-Clause")
    run([npm, "publish"], env=publisher, cwd=lib)

    anonymous_rc = tmp_path / "anonymous-npmrc"
    write_npmrc(anonymous_rc, registry, repo="pubjs")
    anonymous = {**env, "NPM_CONFIG_USERCONFIG": str(anonymous_rc),
                 "NPM_CONFIG_CACHE": str(tmp_path / "anon-cache")}  # fmt: skip
    project = tmp_path / "project"
    project.mkdir()
    run([npm, "init", "-y"], env=anonymous, cwd=project)
    run([npm, "install", "open-thing@3"], env=anonymous, cwd=project)
    done = run(["node", "-e", "console.log(require('open-thing'))"], env=anonymous, cwd=project)
    assert done.stdout.strip() == "open-thing@3.1.4"
    refused = run([npm, "publish"], env=anonymous, cwd=lib, check=False)
    assert refused.returncode != 0
