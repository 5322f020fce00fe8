"""``arbiter serve``: first start, the admin token shown once, and zero-copy downloads."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.registry.conftest import free_port

pytestmark = pytest.mark.slow

GENERATED_TOKEN = re.compile(r"arb_[A-Za-z0-9_-]{43}")


def test_first_start_prints_a_generated_admin_token_once(server_factory, tmp_path) -> None:
    data = tmp_path / "data"
    first = server_factory(data, bootstrap_token=None)
    log = first.log_text()
    tokens = GENERATED_TOKEN.findall(log)
    assert len(tokens) == 1, log
    assert "Save it now; it is not stored" in log
    token = tokens[0]
    me = httpx.get(first.url + "/api/v1/whoami", headers=first.headers(token)).json()
    assert me["id"] == "admin"
    assert "admin" in me["roles"]
    for stored in data.rglob("*"):  # database, WAL, blobs, keys: the secret is nowhere
        assert not stored.is_file() or token.encode() not in stored.read_bytes(), stored

    first.process.terminate()
    first.process.wait(30)
    second = server_factory(data, bootstrap_token=None)
    assert GENERATED_TOKEN.findall(second.log_text()) == [], "the token was shown twice"
    again = httpx.get(second.url + "/api/v1/whoami", headers=second.headers(token))
    assert again.json()["id"] == "admin"


def test_bootstrap_token_is_not_printed(server_factory) -> None:
    server = server_factory(bootstrap_token="arb_given_by_automation_0123456789")
    assert "arb_given_by_automation" not in server.log_text()
    me = httpx.get(server.url + "/api/v1/whoami", headers=server.headers()).json()
    assert me["id"] == "admin"


def test_serve_flags_choose_address_and_data_directory(server_factory, tmp_path) -> None:
    data = tmp_path / "elsewhere"
    server = server_factory(data)  # started with --host, --port and --data
    assert httpx.get(f"http://127.0.0.1:{server.port}/healthz").json() == {"status": "ok"}
    assert (data / "arbiter.db").exists()


def test_downloads_are_sent_zero_copy_through_pathsend(live_server) -> None:
    headers = live_server.headers()
    created = httpx.post(
        live_server.url + "/api/v1/repositories",
        json={"name": "zero-copy", "format": "generic"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    body = os.urandom(2 * 1024 * 1024 + 1)
    sha = hashlib.sha256(body).hexdigest()
    url = live_server.url + "/generic/zero-copy/pkg/1/file.bin"
    put = httpx.put(url, content=body, headers={**headers, "X-Checksum-Sha256": sha})
    assert put.status_code == 201, put.text

    before = _pathsend_count(live_server.url)
    got = httpx.get(url, headers=headers)
    assert got.status_code == 200
    assert got.headers["X-Checksum-Sha256"] == sha
    assert hashlib.sha256(got.content).hexdigest() == sha
    assert _pathsend_count(live_server.url) == before + 1


def _pathsend_count(url: str) -> float:
    metrics = httpx.get(url + "/metrics").text
    match = re.search(r"^arbiter_http_pathsend_responses_total (\S+)$", metrics, re.MULTILINE)
    assert match, "the pathsend counter is missing from /metrics"
    return float(match.group(1))


@pytest.mark.parametrize("option", ["--port", "--download-port"])
def test_a_port_in_use_is_refused_with_a_clear_message(tmp_path, option) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        ports = ["--port", str(port)]
        if option == "--download-port":
            ports = ["--port", str(free_port()), "--download-port", str(port)]
        result = subprocess.run(
            [
                str(Path(sys.executable).with_name("arbiter")),
                "serve",
                *ports,
                "--data",
                str(tmp_path / "data"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")},
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"127.0.0.1:{port} is not available" in result.stderr
    assert f"use {option}" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr
