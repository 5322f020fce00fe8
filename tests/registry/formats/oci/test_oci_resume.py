"""A client that disconnects mid-chunk leaves a resumable session and no corrupt blob."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.registry.conftest import LIVE_ADMIN_TOKEN
from tests.registry.formats.oci.oci_tools import create_oci_repo

pytestmark = pytest.mark.slow
MiB = 1024 * 1024


def _cut_off_patch(url: str, location: str, offset: int, declared: int, sent: bytes) -> None:
    """Send a PATCH that promises ``declared`` bytes, deliver ``sent``, then vanish."""
    parts = urlsplit(url)
    head = (
        f"PATCH {location} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {LIVE_ADMIN_TOKEN}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Range: {offset}-{offset + declared - 1}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(head + sent)
        time.sleep(0.3)  # let the server write what it received
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def test_disconnect_mid_chunk_then_resume(live_server) -> None:
    url = live_server.url
    create_oci_repo(url, LIVE_ADMIN_TOKEN, "resume")
    headers = {"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"}
    data = os.urandom(3 * MiB)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        location = client.post("/v2/resume/app/blobs/uploads/").headers["location"]
        first = client.patch(
            location, content=data[:MiB], headers={"Content-Range": f"0-{MiB - 1}"}
        )
        assert first.status_code == 202 and first.headers["range"] == f"0-{MiB - 1}"

        _cut_off_patch(url, location, MiB, MiB, data[MiB : MiB + 300 * 1024])

        deadline = time.monotonic() + 10
        while True:  # the cut chunk is dropped again: the session resumes at the last whole one
            status = client.get(location)
            if status.headers.get("range") == f"0-{MiB - 1}" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status.status_code == 204
        assert status.headers["range"] == f"0-{MiB - 1}"
        partial = "sha256:" + hashlib.sha256(data[: MiB + 300 * 1024]).hexdigest()
        assert client.head(f"/v2/resume/app/blobs/{partial}").status_code == 404

        rest = client.patch(
            location, content=data[MiB:], headers={"Content-Range": f"{MiB}-{len(data) - 1}"}
        )
        assert rest.status_code == 202
        done = client.put(location, params={"digest": digest})
        assert done.status_code == 201, done.text
        assert client.get(f"/v2/resume/app/blobs/{digest}").content == data
        assert client.get(location).status_code == 404  # the session ended with the upload
