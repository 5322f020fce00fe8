"""Blob pulls through the download listener, with real clients and two workers.

With ``ARBITER_DOWNLOAD_PORT`` set, a blob GET is still the governed pull
(decision and audit event on ``/v2``) and answers ``307`` to a signed link
that the listener sends with ``sendfile``, for blobs of at least
``ARBITER_DOWNLOAD_MIN_SIZE``; smaller ones are answered directly. crane and
skopeo follow the redirect as they follow distribution's to object stores.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx
import pytest

from tests.registry.conftest import LIVE_ADMIN_TOKEN, free_port
from tests.registry.formats.oci.oci_tools import create_oci_repo, host_of, run, tool
from tests.registry.formats.oci.test_oci_clients import _image_blobs, _index_digest, _layout

pytestmark = pytest.mark.slow
# The layers _layout builds are tarred 64 KiB random files (a little over
# 64 KiB, gzip cannot shrink them); configs and manifests are far smaller.
MIN_SIZE = 64 * 1024


@pytest.fixture
def served(server_factory):  # type: ignore[no-untyped-def]
    port = free_port()
    env = {
        "ARBITER_DOWNLOAD_PORT": str(port),
        "ARBITER_DOWNLOAD_MIN_SIZE": str(MIN_SIZE),
        "ARBITER_WORKERS": "2",
    }
    server = server_factory(env=env)
    create_oci_repo(server.url, LIVE_ADMIN_TOKEN, "images")
    return server, port


def test_crane_and_skopeo_pull_blobs_through_the_listener(served, env, tmp_path) -> None:
    server, port = served
    crane, skopeo = tool("crane"), tool("skopeo")
    host = host_of(server.url)
    run([crane, "auth", "login", host, "-u", "admin", "-p", LIVE_ADMIN_TOKEN], env=env)
    layout = _layout(tmp_path, "v1", layers=2)
    image = f"{host}/images/app"
    run([crane, "push", "--insecure", str(layout), f"{image}:v1"], env=env)

    pulled = tmp_path / "crane-pulled"
    run([crane, "pull", "--insecure", "--format", "oci", f"{image}:v1", str(pulled)], env=env)
    assert _index_digest(pulled) == _index_digest(layout)
    assert _image_blobs(pulled) == _image_blobs(layout)

    copied = tmp_path / "skopeo-copied"
    run(
        [skopeo, "login", "--tls-verify=false", "-u", "admin", "-p", LIVE_ADMIN_TOKEN, host],
        env=env,
    )
    policy = ["--insecure-policy"]
    run([skopeo, *policy, "copy", "--src-tls-verify=false", f"docker://{image}:v1",
         f"oci:{copied}:v1"], env=env)  # fmt: skip
    assert _image_blobs(copied) == _image_blobs(layout)

    admin = {"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"}
    manifest = json.loads(_image_blobs(layout)[_index_digest(layout)[7:]])
    layer, config = manifest["layers"][0], manifest["config"]
    assert layer["size"] >= MIN_SIZE > config["size"]
    small = httpx.get(f"{server.url}/v2/images/app/blobs/{config['digest']}", headers=admin)
    assert small.status_code == 200 and len(small.content) == config["size"]
    layer = layer["digest"]
    answer = httpx.get(f"{server.url}/v2/images/app/blobs/{layer}", headers=admin)
    assert answer.status_code == 307
    location = urlsplit(answer.headers["location"])
    assert (location.hostname, location.port) == ("127.0.0.1", port)
    assert answer.headers["docker-content-digest"] == layer

    events = httpx.get(
        f"{server.url}/api/v1/audit/events",
        params={"action": "pull", "outcome": "allowed", "limit": 10_000},
        headers=admin,
    ).json()
    blob_pulls = [e for e in events if e["details"].get("blob") == layer]
    assert len(blob_pulls) >= 3  # crane, skopeo and the request above: each one governed
