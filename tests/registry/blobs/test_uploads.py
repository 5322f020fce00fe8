"""Resumable (chunked) uploads: appended, verified at the end, then staged like any push."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from registry.blobs import (
    BlobNotFound,
    BlobTooLarge,
    DigestMismatch,
    FilesystemBlobStore,
    UploadRangeInvalid,
)


async def one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def append(store: FilesystemBlobStore, upload_id: str, data: bytes, **kwargs: int) -> int:
    return asyncio.run(store.uploads.append(upload_id, one(data), **kwargs))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for d in ("uploads", "staging", "sha256")
        for p in (root / d).rglob("*")
    )


@pytest.fixture
def store(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs")


def test_chunks_then_finish_then_commit(store: FilesystemBlobStore) -> None:
    parts = [os.urandom(1000), os.urandom(50_000), os.urandom(3)]
    upload_id = store.uploads.start()
    offset = 0
    for part in parts:
        offset = append(store, upload_id, part, offset=offset)
    data = b"".join(parts)
    assert store.uploads.size(upload_id) == len(data)

    staged = asyncio.run(store.uploads.finish(upload_id, expected_sha256="sha256:" + sha(data)))

    assert (staged.digest, staged.size) == ("sha256:" + sha(data), len(data))
    assert not store.exists(staged.digest), "a finished upload is staged, not visible"
    ref = store.commit(staged)
    assert store.path_of(ref.digest).read_bytes() == data
    assert leftovers(store.root) == [
        f"sha256/{sha(data)[:2]}",
        f"sha256/{sha(data)[:2]}/{sha(data)}",
    ]


def test_out_of_order_chunk_is_refused(store: FilesystemBlobStore) -> None:
    upload_id = store.uploads.start()
    append(store, upload_id, b"12345")
    with pytest.raises(UploadRangeInvalid) as caught:
        append(store, upload_id, b"again", offset=0)
    assert (caught.value.offset, caught.value.size, caught.value.status) == (0, 5, 416)
    assert store.uploads.size(upload_id) == 5


def test_failed_chunk_is_cut_off_and_the_upload_resumes(store: FilesystemBlobStore) -> None:
    upload_id = store.uploads.start()
    append(store, upload_id, b"first;")

    async def broken() -> AsyncIterator[bytes]:
        yield b"half of the second"
        raise ConnectionResetError

    with pytest.raises(ConnectionResetError):
        asyncio.run(store.uploads.append(upload_id, broken()))
    assert store.uploads.size(upload_id) == len(b"first;")

    append(store, upload_id, b"second", offset=len(b"first;"))
    staged = asyncio.run(store.uploads.finish(upload_id, expected_sha256=sha(b"first;second")))
    assert staged.size == len(b"first;second")


def test_resumes_after_a_restart(store: FilesystemBlobStore) -> None:
    upload_id = store.uploads.start()
    append(store, upload_id, b"before the restart, ")

    restarted = FilesystemBlobStore(store.root)  # no hash state in memory
    asyncio.run(restarted.uploads.append(upload_id, one(b"after it")))
    staged = asyncio.run(restarted.uploads.finish(upload_id))

    assert staged.digest == "sha256:" + sha(b"before the restart, after it")


def test_limit_counts_the_whole_upload(store: FilesystemBlobStore) -> None:
    upload_id = store.uploads.start()
    append(store, upload_id, b"x" * 600, max_size=1000)
    with pytest.raises(BlobTooLarge):
        append(store, upload_id, b"y" * 600, max_size=1000)
    assert store.uploads.size(upload_id) == 600


def test_digest_mismatch_removes_the_upload(store: FilesystemBlobStore) -> None:
    upload_id = store.uploads.start()
    append(store, upload_id, b"payload")
    with pytest.raises(DigestMismatch):
        asyncio.run(store.uploads.finish(upload_id, expected_sha256=sha(b"other")))
    assert leftovers(store.root) == []
    with pytest.raises(BlobNotFound):
        store.uploads.size(upload_id)


def test_second_writer_is_refused_while_a_chunk_is_written(store: FilesystemBlobStore) -> None:
    upload_id = store.uploads.start()
    writing = asyncio.Event()
    release = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"first chunk"
        writing.set()
        await release.wait()

    async def run() -> None:
        first = asyncio.create_task(store.uploads.append(upload_id, slow()))
        await writing.wait()
        with pytest.raises(UploadRangeInvalid):
            await store.uploads.append(upload_id, one(b"second chunk"))
        release.set()
        assert await first == len(b"first chunk")

    asyncio.run(run())


def test_cancel_and_unknown_uploads(store: FilesystemBlobStore) -> None:
    upload_id = store.uploads.start()
    append(store, upload_id, b"bytes")
    store.uploads.cancel(upload_id)
    store.uploads.cancel(upload_id)  # a no-op the second time
    assert leftovers(store.root) == []
    for bad in (upload_id, "../staging", "0" * 31):
        with pytest.raises(BlobNotFound):
            append(store, bad, b"x")
    with pytest.raises(BlobNotFound):
        asyncio.run(store.uploads.finish(upload_id))


def test_sweep_removes_idle_uploads(store: FilesystemBlobStore) -> None:
    idle, active = store.uploads.start(), store.uploads.start()
    old = time.time() - 7200
    os.utime(store.root / "uploads" / idle, (old, old))

    assert store.sweep_staging(timedelta(hours=1)) == 1

    with pytest.raises(BlobNotFound):
        store.uploads.size(idle)
    assert store.uploads.size(active) == 0
