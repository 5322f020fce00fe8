"""The filesystem blob store: ``root/sha256/ab/abcdef...``, staged under ``root/staging/``.

A blob becomes visible only by an atomic rename of a complete, fsync'd file
into its content address, followed by an fsync of the directory. A server
killed mid-upload therefore leaves at most a file in ``staging/``, which
:meth:`FilesystemBlobStore.sweep_staging` removes later; ``sha256/`` never
holds a partial blob. Staging and blobs share one filesystem, so the rename is
atomic.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread

from registry.blobs._io import FILE_MODE, Writeback, fsync_close, fsync_dir, receive, unlink_quietly
from registry.blobs.store import (
    PREFIX,
    BlobNotFound,
    BlobRef,
    DigestMismatch,
    StagedBlob,
    expected_digest,
    parse_digest,
)
from registry.blobs.uploads import FilesystemUploads

READ_CHUNK = 1024 * 1024
_STAGING_ID = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_FAN = re.compile(r"[0-9a-f]{2}")


class FilesystemBlobStore:
    """:class:`~registry.blobs.store.BlobStore` on a local (or mounted) filesystem."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._blobs = self.root / "sha256"
        self._staging = self.root / "staging"
        for directory in (self._blobs, self._staging):
            directory.mkdir(parents=True, exist_ok=True)
        self._uploads = self.root / "uploads"
        self.uploads = FilesystemUploads(self._uploads, self._staging)

    # -- staging -----------------------------------------------------------

    async def stage(
        self,
        chunks: AsyncIterable[bytes],
        *,
        expected_sha256: str | None = None,
        max_size: int | None = None,
    ) -> StagedBlob:
        """Stream ``chunks`` to a new staging file, hashing and counting on the way."""
        expected = expected_digest(expected_sha256)  # before a single byte is read
        if max_size is not None and max_size < 0:
            raise ValueError("max_size must be a non-negative number of bytes")
        staging_id = uuid.uuid4().hex
        path = self._staging / staging_id
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        closed = False
        try:
            hasher = hashlib.sha256()
            size = await receive(fd, chunks, hasher, Writeback(fd), max_size)
            digest = PREFIX + hasher.hexdigest()
            if expected is not None and digest != expected:
                raise DigestMismatch(expected, digest)
            closed = True  # fsync_close closes the descriptor whatever happens
            await anyio.to_thread.run_sync(fsync_close, fd)
        except BaseException:
            if not closed:
                os.close(fd)
            unlink_quietly(path)
            raise
        return StagedBlob(digest=digest, size=size, staging_id=staging_id)

    def commit(self, staged: StagedBlob) -> BlobRef:
        """Rename the staged file into its content address, or drop it if already there."""
        target = self._blob_path(staged.digest)
        source = self._staged_path(staged.staging_id)
        ref = BlobRef(digest=staged.digest, size=staged.size)
        if _touch(target):  # already there: a fresh mtime tells the collector it is in use
            if not unlink_quietly(source):
                raise BlobNotFound(f"staged blob {staged.staging_id}")
            return ref
        self._ensure_fan_dir(target.parent)
        if not _touch(source):  # its mtime becomes the commit's time (the collector's grace)
            raise BlobNotFound(f"staged blob {staged.staging_id}")
        try:
            # An identical concurrent commit may win the race; replacing
            # identical bytes is harmless and open readers keep their inode.
            os.replace(source, target)
        except FileNotFoundError:
            raise BlobNotFound(f"staged blob {staged.staging_id}") from None
        fsync_dir(target.parent)
        return ref

    def discard(self, staged: StagedBlob) -> None:
        unlink_quietly(self._staged_path(staged.staging_id))

    def open_staged(self, staged: StagedBlob) -> BinaryIO:
        try:
            return self._staged_path(staged.staging_id).open("rb")
        except FileNotFoundError:
            raise BlobNotFound(f"staged blob {staged.staging_id}") from None

    # -- committed blobs ---------------------------------------------------

    def exists(self, digest: str) -> bool:
        return self._blob_path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self._blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def path_of(self, digest: str) -> Path:
        path = self._blob_path(digest)
        if not path.is_file():
            raise BlobNotFound(digest)
        return path

    async def iter_range(
        self, digest: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Read ``[start, end)`` in :data:`READ_CHUNK` pieces, off the event loop."""
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range [{start}, {end})")
        remaining = None if end is None else end - start
        async with await anyio.open_file(self.path_of(digest), "rb") as file:
            await file.seek(start)
            while remaining is None or remaining > 0:
                want = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                chunk = await file.read(want)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def delete(self, digest: str) -> bool:
        path = self._blob_path(digest)
        if not unlink_quietly(path):
            return False
        fsync_dir(path.parent)
        return True

    def delete_if_idle(self, digest: str, since: datetime) -> bool:
        """Remove a blob unless it was committed (or deduplicated into) at or after ``since``.

        For the garbage collector, racing pushes: the blob is renamed aside
        first (atomic), then its mtime decides. A commit that deduplicated
        against it touched it before the rename, so it is put back; a commit
        that comes after the rename finds no blob and writes its own copy.
        """
        path = self._blob_path(digest)
        aside = self._staging / f"gc-{uuid.uuid4().hex}"
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return False
        if aside.stat().st_mtime >= since.timestamp():
            os.replace(aside, path)  # identical bytes if a commit re-created it meanwhile
            fsync_dir(path.parent)
            return False
        # No fsync: a deletion lost to a crash leaves garbage for the next collection
        # (or, renamed aside, for the staging sweep), never a missing blob.
        unlink_quietly(aside)
        return True

    def iter_digests(self) -> Iterator[str]:
        """Every committed digest; files that are not valid content addresses are skipped."""
        for fan in sorted(os.scandir(self._blobs), key=lambda e: e.name):
            if not (fan.is_dir() and _FAN.fullmatch(fan.name)):
                continue
            for entry in os.scandir(fan.path):
                name = entry.name
                if _HEX64.fullmatch(name) and name.startswith(fan.name) and entry.is_file():
                    yield PREFIX + name

    def sweep_staging(self, older_than: timedelta) -> int:
        """Remove staged files and uploads last written more than ``older_than`` ago.

        A staged blob lives for one request and an upload between two chunks,
        so anything idle for long was abandoned (a killed server, a vanished client).
        """
        if older_than < timedelta(0):
            raise ValueError("older_than must not be negative")
        cutoff = time.time() - older_than.total_seconds()
        return sum(_sweep(directory, cutoff) for directory in (self._staging, self._uploads))

    # -- paths ---------------------------------------------------------------

    def _blob_path(self, digest: str) -> Path:
        hex_digest = parse_digest(digest)
        return self._blobs / hex_digest[:2] / hex_digest

    def _staged_path(self, staging_id: str) -> Path:
        if not (isinstance(staging_id, str) and _STAGING_ID.fullmatch(staging_id)):
            raise BlobNotFound(f"staged blob {staging_id!r}")
        return self._staging / staging_id

    def _ensure_fan_dir(self, directory: Path) -> None:
        """Create ``sha256/ab/`` on first use, durably."""
        if directory.is_dir():
            return
        directory.mkdir(exist_ok=True)
        fsync_dir(self._blobs)


def _touch(path: Path) -> bool:
    """Refresh a blob's mtime; False when it does not exist."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


def _sweep(directory: Path, cutoff: float) -> int:
    removed = 0
    for entry in os.scandir(directory):
        try:
            stale = entry.is_file() and entry.stat().st_mtime < cutoff
        except FileNotFoundError:
            continue  # committed, finished or discarded while we looked
        if stale and unlink_quietly(Path(entry.path)):
            removed += 1
    return removed
