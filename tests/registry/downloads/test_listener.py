"""The download listener over real sockets: what a signed link gets, and what anything else gets."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from registry.blobs import FilesystemBlobStore
from registry.downloads import DownloadLinks, DownloadListener
from tests.registry.conftest import free_port

SIZE = 3 * 1024 * 1024 + 17  # several sendfile rounds, not a round number


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def links(clock: Clock) -> DownloadLinks:
    return DownloadLinks(key=os.urandom(32), port=free_port(), ttl_s=60, clock=clock)


@pytest.fixture
def listener(store: FilesystemBlobStore, links: DownloadLinks) -> Iterator[DownloadListener]:
    running = DownloadListener(links, store, "127.0.0.1")
    running.start()
    yield running
    running.close()


def put(store: FilesystemBlobStore, body: bytes) -> str:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1 << 20):
            yield body[start : start + (1 << 20)]

    staged = asyncio.run(store.stage(chunks()))
    return store.commit(staged).digest


def link_to(links: DownloadLinks, digest: str, asked: str | None = None) -> str:
    return links.link(digest, asked or digest, "127.0.0.1")


def test_a_signed_link_gets_the_whole_blob_with_its_digest(store, listener, links) -> None:
    body = os.urandom(SIZE)
    digest = put(store, body)
    with httpx.Client() as client:
        for _ in range(2):  # twice on one kept-alive connection
            got = client.get(link_to(links, digest))
            assert got.status_code == 200
            assert got.headers["content-length"] == str(SIZE)
            assert got.headers["docker-content-digest"] == digest
            assert hashlib.sha256(got.content).hexdigest() == digest.removeprefix("sha256:")
        head = client.head(link_to(links, digest))
    assert head.status_code == 200 and head.headers["content-length"] == str(SIZE)
    assert head.content == b""


def test_the_digest_the_client_asked_for_comes_back(store, listener, links) -> None:
    digest = put(store, b"stored under sha256")
    asked = "sha512:" + "e" * 128
    got = httpx.get(link_to(links, digest, asked))
    assert got.status_code == 200 and got.headers["docker-content-digest"] == asked


def test_an_empty_blob_is_served(store, listener, links) -> None:
    digest = put(store, b"")
    got = httpx.get(link_to(links, digest))
    assert got.status_code == 200 and got.content == b""


def test_a_forged_or_expired_link_is_refused_with_what_to_do(store, listener, links, clock) -> None:
    digest = put(store, b"secret layer")
    good = link_to(links, digest)
    forged = good.replace("signature=", "signature=0")
    refused = httpx.get(forged)
    assert refused.status_code == 403
    assert "signature" in refused.text and "request the blob from the registry" in refused.text
    clock.now += 61
    expired = httpx.get(good)
    assert expired.status_code == 403 and "expired" in expired.text


def test_a_link_to_a_blob_since_deleted_is_not_found(store, listener, links) -> None:
    digest = put(store, b"soon gone")
    link = link_to(links, digest)
    assert store.delete(digest)
    gone = httpx.get(link)
    assert gone.status_code == 404 and "no longer stored" in gone.text


def test_other_paths_and_methods_are_refused(store, listener, links) -> None:
    base = f"http://127.0.0.1:{listener.port}"
    digest = put(store, b"x")
    assert httpx.get(f"{base}/v2/").status_code == 404
    assert httpx.get(f"{base}/blobs/{digest}/x").status_code == 404
    posted = httpx.post(link_to(links, digest), content=b"body")
    assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"


def test_a_malformed_request_gets_400_and_the_listener_goes_on(store, listener, links) -> None:
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as raw:
        raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400")
    digest = put(store, b"still serving")
    assert httpx.get(link_to(links, digest)).content == b"still serving"


def test_close_ends_a_download_in_flight(store, listener, links) -> None:
    size = 64 * 1024 * 1024  # far more than loopback's socket buffers hold
    digest = put(store, b"\0" * size)
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as raw:
        target = link_to(links, digest).split(str(listener.port), 1)[1]
        raw.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert raw.recv(64).startswith(b"HTTP/1.1 200")  # we read no more: sendfile waits
        listener.close()
        received = 0
        while chunk := raw.recv(1 << 20):
            received += len(chunk)
    assert received < size
