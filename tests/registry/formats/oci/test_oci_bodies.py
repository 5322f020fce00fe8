"""The in-memory manifest bodies: read once, served from memory, bounded by bytes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from registry.blobs import BlobNotFound, FilesystemBlobStore
from registry.formats.oci import bodies


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    bodies.forget_all()
    yield
    bodies.forget_all()


def put(store: FilesystemBlobStore, data: bytes) -> str:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    staged = asyncio.run(store.stage(chunks()))
    return store.commit(staged).digest


def test_second_read_comes_from_memory(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    digest = put(store, b'{"schemaVersion": 2}')
    assert bodies.manifest_body(store, digest) == b'{"schemaVersion": 2}'
    store.path_of(digest).unlink()  # gone from disk, still served: the digest names the bytes
    assert bodies.manifest_body(store, digest) == b'{"schemaVersion": 2}'


def test_large_manifests_are_read_each_time(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    large = os.urandom(bodies.LARGEST_KEPT + 1)
    digest = put(store, large)
    assert bodies.manifest_body(store, digest) == large
    store.path_of(digest).unlink()
    with pytest.raises(BlobNotFound):
        bodies.manifest_body(store, digest)


def test_budget_evicts_the_least_recently_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bodies, "BUDGET_BYTES", 3000)
    store = FilesystemBlobStore(tmp_path / "blobs")
    first, second, third = (put(store, bytes([n]) * 1000) for n in range(3))
    for digest in (first, second, first, third):  # second is now the least recent
        bodies.manifest_body(store, digest)
    fourth = put(store, b"\x04" * 1000)
    bodies.manifest_body(store, fourth)
    for digest in (first, second, third, fourth):
        store.path_of(digest).unlink()
    assert bodies.manifest_body(store, first) == b"\x00" * 1000
    assert bodies.manifest_body(store, third) == b"\x02" * 1000
    assert bodies.manifest_body(store, fourth) == b"\x04" * 1000
    with pytest.raises(BlobNotFound):
        bodies.manifest_body(store, second)
