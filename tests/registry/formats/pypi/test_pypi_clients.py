"""pip, uv and twine, unmodified, against a real ``arbiter serve`` on loopback.

Each client runs with a configuration of its own (a temporary HOME, no pip or
uv config, caches in the test's directory), so nothing from the user's
machine leaks in and every request goes to the server under test. Packages
are written by hand (see :mod:`pypi_builders`): no build backend, no network.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.registry.conftest import LIVE_ADMIN_TOKEN, LiveServer, server_with_repositories
from tests.registry.formats.pypi.pypi_builders import sdist, wheel
from tests.registry.formats.pypi.pypi_tools import Tools, run, tools_in_venv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with server_with_repositories(
        tmp_path_factory.mktemp("pypi-live") / "data",
        {"name": "py", "format": "pypi"},
        {"name": "pub", "format": "pypi", "labels": {"public": "true"}},
    ) as server:
        yield server


@pytest.fixture(scope="module")
def tools() -> Tools:
    return tools_in_venv()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Client configuration in the test's own directory; nothing of the user's is read."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        "HOME": str(home),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INPUT": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_CACHE_DIR": str(tmp_path / "pip-cache"),
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_KEYRING_PROVIDER": "disabled",
        "TWINE_NON_INTERACTIVE": "1",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }


def index_url(
    server: LiveServer, repo: str = "py", token: str | None = LIVE_ADMIN_TOKEN, user: str = "admin"
) -> str:
    host = server.url.removeprefix("http://")
    credentials = f"{user}:{token}@" if token else ""
    return f"http://{credentials}{host}/pypi/{repo}/simple/"


def upload_url(server: LiveServer, repo: str = "py") -> str:
    return f"{server.url}/pypi/{repo}/"


def twine_upload(
    tools: Tools, server: LiveServer, env: dict[str, str], *files: Path, repo: str = "py",
    token: str = LIVE_ADMIN_TOKEN, check: bool = True, extra: tuple[str, ...] = (),
) -> str:  # fmt: skip
    done = run(
        [tools.twine, "upload", "--non-interactive", "--disable-progress-bar",
         "--repository-url", upload_url(server, repo), "-u", "__token__", "-p", token,
         *extra, *map(str, files)],
        env=env, check=check,
    )  # fmt: skip
    return done.stdout + done.stderr


def test_twine_upload_then_pip_install_and_download(
    registry: LiveServer, tools: Tools, env: dict[str, str], tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    app = wheel(dist, "Hello.Arbiter", "1.0", requires=["dep-arbiter>=1"], license_expression="MIT")
    app_sdist = sdist(dist, "Hello.Arbiter", "1.0", license_expression="MIT")
    dep = wheel(dist, "dep_arbiter", "1.2")
    twine_upload(tools, registry, env, app, app_sdist, dep)

    target = tmp_path / "site"
    run([tools.python, "-m", "pip", "install", "--target", str(target),
         "--index-url", index_url(registry), "hello-arbiter"], env=env)  # fmt: skip
    assert (target / "hello_arbiter" / "__init__.py").read_text() == '__version__ = "1.0"\n'
    assert (target / "dep_arbiter" / "__init__.py").exists()

    downloads = tmp_path / "downloads"
    run([tools.python, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
         "-d", str(downloads), "--index-url", index_url(registry), "Hello_Arbiter==1.0"],
        env=env)  # fmt: skip
    assert (downloads / app.name).read_bytes() == app.read_bytes()

    headers = {"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"}
    lineage = httpx.get(
        f"{registry.url}/api/v1/lineage/py/hello-arbiter/1.0", headers=headers
    ).json()
    assert lineage["pulls"]["count"] >= 2
    kinds = [s["kind"] for s in lineage["steps"]]
    assert kinds.count("pushed") == 2 and kinds.count("analysed") == 2  # the wheel and the sdist


def test_uv_publish_uv_pip_install_and_uv_sync(
    registry: LiveServer, tools: Tools, env: dict[str, str], tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    lib = wheel(dist, "uv-lib", "0.3.0", requires=["uv-dep"], requires_python=">=3.8")
    dep = wheel(dist, "uv-dep", "2.0")
    out = run([tools.uv, "publish", "--publish-url", upload_url(registry), "-u", "__token__",
               "-p", LIVE_ADMIN_TOKEN, str(lib), str(dep)], env=env)  # fmt: skip
    assert "Uploading uv_lib-0.3.0-py3-none-any.whl" in out.stderr

    target = tmp_path / "site"
    run([tools.uv, "pip", "install", "--python", tools.python, "--target", str(target),
         "--index-url", index_url(registry), "uv-lib"], env=env)  # fmt: skip
    assert (target / "uv_lib" / "__init__.py").exists()
    assert (target / "uv_dep" / "__init__.py").exists()

    project = tmp_path / "project"
    project.mkdir()
    host = registry.url.removeprefix("http://")
    (project / "pyproject.toml").write_text(
        "[project]\n"
        'name = "consumer"\n'
        'version = "0.1.0"\n'
        'requires-python = ">=3.11"\n'
        'dependencies = ["uv-lib==0.3.0"]\n'
        "[tool.uv]\n"
        "package = false\n"
        "[[tool.uv.index]]\n"
        'name = "arbiter"\n'
        f'url = "http://{host}/pypi/py/simple/"\n'
        "default = true\n"
    )
    sync_env = {
        **env,
        "UV_INDEX_ARBITER_USERNAME": "admin",
        "UV_INDEX_ARBITER_PASSWORD": LIVE_ADMIN_TOKEN,
    }
    run([tools.uv, "sync", "--python", tools.python], env=sync_env, cwd=project)
    lock = (project / "uv.lock").read_text()
    assert 'name = "uv-dep"' in lock and "/pypi/py/files/uv-lib/0.3.0/" in lock
    site = next((project / ".venv" / "lib").glob("python*/site-packages"))
    assert (site / "uv_lib" / "__init__.py").exists()


def test_a_denied_license_is_refused_with_the_policy_reason(
    registry: LiveServer, tools: Tools, env: dict[str, str], tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    path = wheel(dist, "copyleft-thing", "1.0", license_expression="GPL-3.0-only")
    reason = "license GPL-3.0-only is on the deny list"
    out = twine_upload(tools, registry, env, path, check=False, extra=("--verbose",))
    assert "403 Forbidden" in out and reason in out
    done = run([tools.uv, "publish", "--publish-url", upload_url(registry), "-u", "__token__",
                "-p", LIVE_ADMIN_TOKEN, str(path)], env=env, check=False)  # fmt: skip
    assert done.returncode != 0
    assert f"Server says: denied by policy: {reason}" in done.stderr
    index = httpx.get(
        f"{registry.url}/pypi/py/simple/copyleft-thing/",
        headers={"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"},
    )
    assert index.status_code == 404


def test_an_existing_file_is_never_overwritten(
    registry: LiveServer, tools: Tools, env: dict[str, str], tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    original = wheel(first, "stable-bytes", "1.0")
    twine_upload(tools, registry, env, original)
    changed = wheel(second, "stable-bytes", "1.0", summary="other bytes, same name")
    out = twine_upload(tools, registry, env, changed, check=False, extra=("--verbose",))
    assert "409 Conflict" in out and "File already exists" in out
    downloaded = httpx.get(
        f"{registry.url}/pypi/py/files/stable-bytes/1.0/{original.name}",
        headers={"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"},
    )
    assert downloaded.content == original.read_bytes()


def _user_token(server: LiveServer, name: str) -> str:
    headers = {"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"}
    created = httpx.post(f"{server.url}/api/v1/users", json={"name": name}, headers=headers)
    assert created.status_code == 201, created.text
    token = httpx.post(f"{server.url}/api/v1/users/{name}/tokens", json={}, headers=headers)
    assert token.status_code == 201, token.text
    return str(token.json()["token"])


def _quarantine(server: LiveServer, name: str, version: str) -> None:
    """Label a release ``quarantine`` (what an operator's scanner would do) in the database."""
    with sqlite3.connect(server.data / "arbiter.db") as db:
        db.execute(
            "INSERT INTO labels (version_id, key, value) SELECT v.id, 'quarantine', 'true' "
            "FROM versions v JOIN packages p ON p.id = v.package_id "
            "WHERE p.name = ? AND v.version = ?",
            (name, version),
        )


def _denials(server: LiveServer, actor: str) -> list[list[str]]:
    events = httpx.get(
        f"{server.url}/api/v1/audit/events",
        params={"outcome": "denied", "action": "pull"},
        headers={"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"},
    ).json()
    return [e["decision"]["reasons"] for e in events if e["actor"]["id"] == actor]


def test_a_denied_install_fails_and_the_policy_reason_is_recorded(
    registry: LiveServer, tools: Tools, env: dict[str, str], tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel_path = wheel(dist, "held-lib", "1.0")
    twine_upload(tools, registry, env, wheel_path)
    _quarantine(registry, "held-lib", "1.0")
    reason = "artifact is quarantined (label quarantine) and cannot be pulled"

    # The index still lists the release; its download is refused by the pull policy.
    pip = run([tools.python, "-m", "pip", "install", "--target", str(tmp_path / "site"),
               "--index-url", index_url(registry), "held-lib"], env=env, check=False)  # fmt: skip
    # pip and uv print a refusal's status line and URL only: the URL spells the reason.
    spelled = "/pypi/py/-/denied/artifact-is-quarantined-label-quarantine-and-cannot-be-pulled"
    assert pip.returncode != 0
    assert "403 Client Error: Forbidden for url: " in pip.stdout + pip.stderr
    assert spelled in pip.stdout + pip.stderr
    uv = run([tools.uv, "pip", "install", "--python", tools.python, "--target",
              str(tmp_path / "uv-site"), "--index-url", index_url(registry), "held-lib"],
             env=env, check=False)  # fmt: skip
    assert uv.returncode != 0 and "403 Forbidden" in uv.stderr
    assert spelled in uv.stderr
    # Other clients get the 403 itself, its body naming the rule, as the audit log does.
    url = f"{registry.url}/pypi/py/files/held-lib/1.0/{wheel_path.name}"
    answer = httpx.get(url, headers={"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"})
    assert answer.status_code == 403 and reason in answer.text
    assert [reason] in _denials(registry, "admin")

    outsider = _user_token(registry, "outsider")
    outsider_index = index_url(registry, token=outsider, user="outsider")
    pip = run([tools.python, "-m", "pip", "install", "--target", str(tmp_path / "site"),
               "--index-url", outsider_index, "held-lib"], env=env, check=False)  # fmt: skip
    assert pip.returncode != 0
    refusal = "subject outsider holds no role that grants pull on repository py"
    assert [refusal] in _denials(registry, "outsider")


def test_anonymous_install_from_a_public_repository_and_yanks(
    registry: LiveServer, tools: Tools, env: dict[str, str], tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    files = [wheel(dist, "open-lib", version) for version in ("1.0", "1.1")]
    twine_upload(tools, registry, env, *files, repo="pub")
    headers = {"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"}
    yanked = httpx.post(
        f"{registry.url}/pypi/pub/pypi/open-lib/1.1/yank",
        json={"reason": "corrupt wheel"},
        headers=headers,
    )
    assert yanked.status_code == 200, yanked.text

    target = tmp_path / "site"
    run([tools.python, "-m", "pip", "install", "--target", str(target),
         "--index-url", index_url(registry, "pub", token=None), "open-lib"], env=env)  # fmt: skip
    assert (target / "open_lib" / "__init__.py").read_text() == '__version__ = "1.0"\n'
    pinned = run([tools.python, "-m", "pip", "install", "--target", str(tmp_path / "pinned"),
                  "--index-url", index_url(registry, "pub", token=None), "open-lib==1.1"],
                 env=env)  # fmt: skip
    assert "Reason for being yanked: corrupt wheel" in pinned.stdout + pinned.stderr

    project = json.loads(httpx.get(f"{registry.url}/pypi/pub/pypi/open-lib/json").text)
    assert project["info"]["version"] == "1.0"
    assert project["releases"]["1.1"][0]["yanked_reason"] == "corrupt wheel"


def test_client_python_is_this_interpreter(tools: Tools) -> None:
    assert tools.python == sys.executable
