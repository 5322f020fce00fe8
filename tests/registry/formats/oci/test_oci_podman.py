"""podman, a daemonless client, logs in and moves an image through Arbiter.

podman talks to the registry itself (docker's CLI would need a daemon this
machine does not run), so it stands for the docker-style login flow here.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.registry.conftest import LIVE_ADMIN_TOKEN
from tests.registry.formats.oci.oci_tools import create_oci_repo, host_of, run, tool

pytestmark = pytest.mark.slow


def _storage_args(root: Path, runroot: Path) -> list[str]:
    """Podman's image store in the test's directory, with the vfs driver (no overlay mounts)."""
    return ["--root", str(root / "storage"), "--runroot", str(runroot), "--storage-driver", "vfs"]


def test_podman_login_push_and_pull(live_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # podman refuses a runroot path longer than 50 characters
    runroot = Path(tempfile.mkdtemp(prefix="arb-podman-", dir="/tmp"))
    try:
        _login_push_pull(live_server, tmp_path, runroot)
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def _login_push_pull(live_server, tmp_path: Path, runroot: Path) -> None:  # type: ignore[no-untyped-def]
    podman, umoci = tool("podman"), tool("umoci")
    create_oci_repo(live_server.url, LIVE_ADMIN_TOKEN, "podman")
    host = host_of(live_server.url)
    env = {"REGISTRY_AUTH_FILE": str(tmp_path / "auth.json"), "HOME": str(tmp_path)}
    store = _storage_args(tmp_path, runroot)

    layout = tmp_path / "layout"
    run([umoci, "init", "--layout", str(layout)])
    run([umoci, "new", "--image", f"{layout}:v1"])
    bundle = tmp_path / "bundle"
    run([umoci, "unpack", "--rootless", "--image", f"{layout}:v1", str(bundle)])
    (bundle / "rootfs" / "hello.txt").write_text("hello from podman\n")
    run([umoci, "repack", "--image", f"{layout}:v1", str(bundle)])

    login = run(
        [
            podman,
            *store,
            "login",
            "--tls-verify=false",
            "-u",
            "admin",
            "-p",
            LIVE_ADMIN_TOKEN,
            host,
        ],
        env=env,
    )
    assert "Login Succeeded" in login.stdout
    bad = run(
        [podman, *store, "login", "--tls-verify=false", "-u", "admin", "-p", "arb_wrong", host],
        env=env,
        check=False,
    )
    assert bad.returncode != 0

    image = f"{host}/podman/hello:v1"
    run([podman, *store, "pull", f"oci:{layout}:v1"], env=env)
    listed = run([podman, *store, "images", "--format", "json"], env=env).stdout
    local_id = json.loads(listed)[0]["Id"]
    run([podman, *store, "tag", local_id, image], env=env)
    run([podman, *store, "push", "--tls-verify=false", image], env=env)
    run([podman, *store, "rmi", "-f", image], env=env)
    run([podman, *store, "pull", "--tls-verify=false", image], env=env)
    inspected = run([podman, *store, "image", "inspect", image], env=env).stdout
    assert json.loads(inspected)[0]["Id"] == local_id
