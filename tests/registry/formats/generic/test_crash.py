"""A server killed with SIGKILL mid-upload leaves nothing half-written behind.

Against a real ``arbiter serve`` process: start a large streamed upload, kill
the server while bytes are still flowing, restart it on the same data
directory, and check that no blob, file row or version is visible, that the
audit chain is intact, and that the next request is served normally.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator

import httpx

from tests.registry.conftest import ServerFactory

CHUNK = 1024 * 1024


def _slow_body(started: threading.Event, stop: threading.Event) -> Iterator[bytes]:
    for _ in range(4096):  # up to 4 GiB, far more than is sent before the kill
        if stop.is_set():
            return
        yield os.urandom(1024) * 1024
        started.set()
        time.sleep(0.005)


def _visible_blobs(data: os.PathLike[str]) -> list[str]:
    root = os.path.join(data, "blobs", "sha256")
    return [f for _d, _s, files in os.walk(root) for f in files]


def test_sigkill_mid_upload_leaves_no_partial_blob_or_row(server_factory: ServerFactory) -> None:
    server = server_factory()
    headers = server.headers()
    created = httpx.post(
        server.url + "/api/v1/repositories",
        json={"name": "files", "format": "generic"},
        headers=headers,
    )
    assert created.status_code == 201, created.text

    started, stop = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def upload() -> None:
        try:
            outcome["response"] = httpx.put(
                server.url + "/generic/files/big/1.0/big.bin",
                content=_slow_body(started, stop),
                headers=headers,
                timeout=60,
            )
        except httpx.HTTPError as error:
            outcome["error"] = error

    thread = threading.Thread(target=upload)
    thread.start()
    assert started.wait(30), "the upload never started"
    time.sleep(0.5)  # several MiB are in the server's staging file now
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(10)
    stop.set()
    thread.join(30)
    assert "error" in outcome, f"the upload should have been cut off, got {outcome}"

    assert _visible_blobs(server.data) == []
    db = sqlite3.connect(server.data / "arbiter.db")
    try:
        assert db.execute("SELECT count(*) FROM files").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM versions").fetchone() == (0,)
    finally:
        db.close()

    restarted = server_factory(data=server.data)
    body = b"after the crash"
    put = httpx.put(
        restarted.url + "/generic/files/small/1.0/small.bin",
        content=body,
        headers={**restarted.headers(), "X-Checksum-Sha256": hashlib.sha256(body).hexdigest()},
    )
    assert put.status_code == 201, put.text
    got = httpx.get(
        restarted.url + "/generic/files/small/1.0/small.bin", headers=restarted.headers()
    )
    assert got.content == body
    assert len(_visible_blobs(restarted.data)) == 2  # the file and its SBOM
