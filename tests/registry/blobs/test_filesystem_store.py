"""FilesystemBlobStore: what reaches ``sha256/``, and what never does."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from registry.blobs import (
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    DigestMismatch,
    FilesystemBlobStore,
    StagedBlob,
)
from registry.blobs._io import INLINE_BYTES, WRITER_QUEUE_BYTES

MiB = 1024 * 1024


async def chunks_of(parts: Iterable[bytes], *, yield_between: bool = False) -> AsyncIterator[bytes]:
    for part in parts:
        if yield_between:
            await asyncio.sleep(0)
        yield part


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def visible(root: Path) -> list[Path]:
    return sorted(p for p in (root / "sha256").rglob("*") if p.is_file())


def staged_files(root: Path) -> list[Path]:
    return sorted((root / "staging").iterdir())


def stage(store: FilesystemBlobStore, parts: Iterable[bytes], **kwargs: object) -> StagedBlob:
    return asyncio.run(store.stage(chunks_of(parts), **kwargs))  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs")


def test_is_a_blob_store(store: FilesystemBlobStore) -> None:
    assert isinstance(store, BlobStore)


def test_roundtrip(store: FilesystemBlobStore) -> None:
    parts = [os.urandom(1000), b"", os.urandom(70_000), os.urandom(5)]
    data = b"".join(parts)
    staged = stage(store, parts)
    assert (staged.digest, staged.size) == (digest_of(data), len(data))
    assert not store.exists(staged.digest), "staged bytes must not be visible"
    with store.open_staged(staged) as f:
        assert f.read() == data

    ref = store.commit(staged)

    assert (ref.digest, ref.size) == (digest_of(data), len(data))
    path = store.path_of(ref.digest)
    assert path == store.root / "sha256" / ref.digest[7:9] / ref.digest[7:]
    assert path.read_bytes() == data
    assert store.exists(ref.digest) and store.size(ref.digest) == len(data)
    assert list(store.iter_digests()) == [ref.digest]
    assert staged_files(store.root) == []


def test_iter_range(store: FilesystemBlobStore) -> None:
    data = os.urandom(3 * MiB + 17)
    ref = store.commit(stage(store, [data]))

    async def collect(start: int, end: int | None) -> bytes:
        return b"".join([c async for c in store.iter_range(ref.digest, start, end)])

    assert asyncio.run(collect(0, None)) == data
    assert asyncio.run(collect(5, 2 * MiB + 3)) == data[5 : 2 * MiB + 3]
    assert asyncio.run(collect(len(data) - 1, len(data) + 100)) == data[-1:]
    with pytest.raises(ValueError):
        asyncio.run(collect(10, 5))


def test_dedup_keeps_the_first_copy(store: FilesystemBlobStore) -> None:
    data = b"same bytes" * 1000
    first = store.commit(stage(store, [data]))
    inode = store.path_of(first.digest).stat().st_ino

    second = store.commit(stage(store, [data[:7], data[7:]]))

    assert second == first
    assert visible(store.root) == [store.path_of(first.digest)]
    assert store.path_of(first.digest).stat().st_ino == inode
    assert staged_files(store.root) == []


@pytest.mark.parametrize("style", ["bare", "upper", "prefixed"])
def test_stated_digest_is_accepted_in_every_spelling(
    store: FilesystemBlobStore, style: str
) -> None:
    data = b"payload"
    hex_digest = hashlib.sha256(data).hexdigest()
    stated = {"bare": hex_digest, "upper": hex_digest.upper(), "prefixed": "sha256:" + hex_digest}
    staged = stage(store, [data], expected_sha256=stated[style])
    assert staged.digest == "sha256:" + hex_digest


def test_digest_mismatch_leaves_nothing(store: FilesystemBlobStore) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(DigestMismatch) as caught:
        stage(store, [b"payload"], expected_sha256=wrong)
    assert caught.value.expected == "sha256:" + wrong
    assert caught.value.actual == digest_of(b"payload")
    assert caught.value.status == 400
    assert visible(store.root) == [] and staged_files(store.root) == []


def test_too_large_stops_reading_and_leaves_nothing(store: FilesystemBlobStore) -> None:
    consumed = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal consumed
        while True:
            consumed += 1
            yield b"x" * 600

    with pytest.raises(BlobTooLarge) as caught:
        asyncio.run(store.stage(endless(), max_size=1000))
    assert consumed == 2, "reading must stop at the chunk that crosses the limit"
    assert caught.value.status == 413
    assert visible(store.root) == [] and staged_files(store.root) == []


def test_exactly_max_size_is_accepted(store: FilesystemBlobStore) -> None:
    assert stage(store, [b"x" * 600, b"y" * 400], max_size=1000).size == 1000


def test_broken_body_leaves_nothing(store: FilesystemBlobStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"first part"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        asyncio.run(store.stage(broken()))
    assert visible(store.root) == [] and staged_files(store.root) == []


@pytest.mark.parametrize(
    "before_cancel",
    [[b"some bytes"], [b"m" * MiB] * (INLINE_BYTES // MiB + 3)],
    ids=["inline", "past-the-writer"],
)
def test_cancelled_stage_leaves_nothing(
    store: FilesystemBlobStore, before_cancel: list[bytes]
) -> None:
    started = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        for chunk in before_cancel:
            yield chunk
        started.set()
        await asyncio.sleep(3600)
        yield b"never"

    async def run() -> None:
        task = asyncio.create_task(store.stage(slow()))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert visible(store.root) == [] and staged_files(store.root) == []


def test_concurrent_stage_of_same_content(store: FilesystemBlobStore) -> None:
    data = os.urandom(256 * 1024)
    parts = [data[i : i + 4096] for i in range(0, len(data), 4096)]

    async def push() -> StagedBlob:
        return await store.stage(chunks_of(parts, yield_between=True))

    async def run() -> list[StagedBlob]:
        return list(await asyncio.gather(*(push() for _ in range(6))))

    staged = asyncio.run(run())
    assert len({s.staging_id for s in staged}) == 6, "each upload needs its own staging file"
    barrier = threading.Barrier(len(staged))

    def commit(s: StagedBlob) -> object:
        barrier.wait()
        return store.commit(s)

    with ThreadPoolExecutor(len(staged)) as pool:
        refs = set(pool.map(commit, staged))

    assert len(refs) == 1
    (path,) = visible(store.root)
    assert path.read_bytes() == data
    assert staged_files(store.root) == []


def test_discard_and_commit_after_each_other(store: FilesystemBlobStore) -> None:
    committed = stage(store, [b"kept"])
    store.commit(committed)
    store.discard(committed)  # a no-op once committed
    assert store.exists(committed.digest)

    dropped = stage(store, [b"dropped"])
    store.discard(dropped)
    assert staged_files(store.root) == []
    with pytest.raises(BlobNotFound):
        store.commit(dropped)
    with pytest.raises(BlobNotFound):
        store.open_staged(dropped)
    assert not store.exists(dropped.digest)


def test_forged_staging_id_is_refused(store: FilesystemBlobStore) -> None:
    (store.root / "secret").write_bytes(b"x")
    forged = StagedBlob(digest=digest_of(b"x"), size=1, staging_id="../secret")
    with pytest.raises(BlobNotFound):
        store.commit(forged)
    with pytest.raises(BlobNotFound):
        store.discard(forged)
    assert (store.root / "secret").exists()


def test_missing_blob(store: FilesystemBlobStore) -> None:
    digest = digest_of(b"never stored")
    assert not store.exists(digest)
    with pytest.raises(BlobNotFound) as caught:
        store.path_of(digest)
    assert caught.value.status == 404
    with pytest.raises(BlobNotFound):
        store.size(digest)
    assert store.delete(digest) is False


def test_delete_and_iter_digests(store: FilesystemBlobStore) -> None:
    refs = [store.commit(stage(store, [bytes([i]) * 10])) for i in range(5)]
    (store.root / "sha256" / "zz").mkdir()
    (store.root / "sha256" / "ab" / "not-a-digest").parent.mkdir(exist_ok=True)
    (store.root / "sha256" / "ab" / "not-a-digest").write_bytes(b"junk")
    assert sorted(store.iter_digests()) == sorted(r.digest for r in refs)

    assert store.delete(refs[0].digest) is True
    assert store.delete(refs[0].digest) is False
    assert sorted(store.iter_digests()) == sorted(r.digest for r in refs[1:])


def test_sweep_staging_removes_only_abandoned_files(store: FilesystemBlobStore) -> None:
    abandoned = store.root / "staging" / ("0" * 32)  # what a killed server leaves
    abandoned.write_bytes(b"half an upload")
    old = time.time() - 7200
    os.utime(abandoned, (old, old))
    fresh = stage(store, [b"still waiting for its second decision"])
    assert list(store.iter_digests()) == [], "a staged file is never visible"

    assert store.sweep_staging(timedelta(hours=1)) == 1

    assert not abandoned.exists()
    assert store.commit(fresh).size == len(b"still waiting for its second decision")
    assert store.sweep_staging(timedelta(0)) == 0


def test_memory_stays_flat_while_staging_200_mib(store: FilesystemBlobStore) -> None:
    template = bytearray(os.urandom(MiB))

    async def body() -> AsyncIterator[bytes]:
        for _ in range(200):
            yield bytes(template)  # a fresh 1 MiB object each time, like a socket read

    tracemalloc.start()
    try:
        staged = asyncio.run(store.stage(body()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert staged.size == 200 * MiB
    # the chunks queued for the writer thread, plus the few in hand
    bound = WRITER_QUEUE_BYTES + 4 * MiB
    assert peak < bound, f"staging held {peak / MiB:.1f} MiB at its peak"


def test_a_large_body_goes_through_the_writer_thread_intact(store: FilesystemBlobStore) -> None:
    """Past ``INLINE_BYTES`` a thread writes while the loop hashes: same bytes, same digest."""
    parts = [os.urandom(size) for size in (MiB, 3 * MiB, 1, 400 * 1024, 0, 5 * MiB + 7)]
    data = b"".join(parts)
    assert len(data) > INLINE_BYTES + WRITER_QUEUE_BYTES
    staged = stage(store, parts, expected_sha256=digest_of(data))
    ref = store.commit(staged)
    assert (ref.digest, ref.size) == (digest_of(data), len(data))
    assert store.path_of(ref.digest).read_bytes() == data


def test_a_body_too_large_past_the_writer_leaves_nothing(store: FilesystemBlobStore) -> None:
    parts = [os.urandom(MiB) for _ in range(12)]
    with pytest.raises(BlobTooLarge):
        stage(store, parts, max_size=10 * MiB)
    assert visible(store.root) == [] and staged_files(store.root) == []


def test_a_failing_write_in_the_writer_thread_is_raised(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC on the writer's side reaches the request, and nothing is left staged."""
    from registry.blobs import _io

    def full(_fd: int, _buffers: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_io.os, "writev", full)
    parts = [os.urandom(MiB) for _ in range(INLINE_BYTES // MiB + 4)]
    with pytest.raises(OSError, match="No space left"):
        stage(store, parts)
    assert visible(store.root) == [] and staged_files(store.root) == []


def test_many_small_chunks_past_the_writer_stay_in_order(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More queued chunks than one writev may take (IOV_MAX): written in order all the same."""
    from registry.blobs import _io

    writev = os.writev
    calls: list[int] = []

    def slow_first_writev(fd: int, buffers: list[memoryview]) -> int:
        if not calls:
            time.sleep(0.3)  # let thousands of chunks queue up behind this write
        calls.append(len(buffers))
        return writev(fd, buffers)

    monkeypatch.setattr(_io.os, "writev", slow_first_writev)
    head = os.urandom(INLINE_BYTES)
    tail = [os.urandom(97) for _ in range(5000)]
    data = head + b"".join(tail)
    staged = stage(store, [head, *tail])
    assert (staged.digest, staged.size) == (digest_of(data), len(data))
    with store.open_staged(staged) as file:
        assert file.read() == data
    assert max(calls) > 100, "the chunks did not queue up; the test proves nothing"
