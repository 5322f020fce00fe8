"""Resumable uploads on the filesystem: ``root/uploads/<id>``, appended chunk by chunk.

OCI clients push a blob in several ``PATCH`` requests and name its digest only
in the final ``PUT``. Each chunk is appended (and fsync'd, because the client
treats an acknowledged chunk as stored) while a sha256 of everything so far is
kept in memory, so finishing costs no second read. Python cannot serialise a
hash state, so after a restart, or when another worker process took the
previous chunk, the state is rebuilt by re-reading the file once.

A finished upload is renamed into ``staging/`` and from then on is an ordinary
:class:`~registry.blobs.store.StagedBlob`: the second policy decision, then
``commit`` or ``discard``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterable, Iterator
from pathlib import Path

import anyio.to_thread

from registry.blobs._io import FILE_MODE, Writeback, receive, unlink_quietly
from registry.blobs.store import (
    PREFIX,
    BlobNotFound,
    DigestMismatch,
    StagedBlob,
    UploadRangeInvalid,
    expected_digest,
)

HASH_STATES_KEPT = 1024
REHASH_CHUNK = 1024 * 1024
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


class FilesystemUploads:
    """:class:`~registry.blobs.store.Uploads` beside a :class:`FilesystemBlobStore`."""

    def __init__(self, directory: Path, staging: Path) -> None:
        self._dir = directory
        self._staging = staging
        self._dir.mkdir(parents=True, exist_ok=True)
        # upload id -> (bytes hashed, hash of those bytes); least recently used first
        self._states: OrderedDict[str, tuple[int, hashlib._Hash]] = OrderedDict()

    def start(self) -> str:
        upload_id = uuid.uuid4().hex
        fd = os.open(self._dir / upload_id, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        os.close(fd)
        self._remember(upload_id, 0, hashlib.sha256())
        return upload_id

    def size(self, upload_id: str) -> int:
        try:
            return self._path(upload_id).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(f"upload {upload_id}") from None

    async def append(
        self,
        upload_id: str,
        chunks: AsyncIterable[bytes],
        *,
        offset: int | None = None,
        max_size: int | None = None,
    ) -> int:
        """Append a chunk; a failed chunk is cut off again, so the upload stays resumable."""
        with self._locked(upload_id) as fd:
            size = os.fstat(fd).st_size
            if offset is not None and offset != size:
                raise UploadRangeInvalid(upload_id, offset, size)
            hasher = await self._hash_state(upload_id, fd, size)
            os.lseek(fd, size, os.SEEK_SET)
            try:
                new_size = await receive(fd, chunks, hasher, Writeback(fd, start=size), max_size)
                await anyio.to_thread.run_sync(os.fsync, fd)
            except BaseException:
                os.ftruncate(fd, size)
                raise
        self._remember(upload_id, new_size, hasher)
        return new_size

    async def finish(self, upload_id: str, *, expected_sha256: str | None = None) -> StagedBlob:
        """Check the digest and move the upload to staging; a mismatch removes the upload."""
        expected = expected_digest(expected_sha256)
        with self._locked(upload_id) as fd:
            size = os.fstat(fd).st_size
            digest = PREFIX + (await self._hash_state(upload_id, fd, size)).hexdigest()
            self._states.pop(upload_id, None)
            if expected is not None and digest != expected:
                unlink_quietly(self._path(upload_id))
                raise DigestMismatch(expected, digest)
            staging_id = uuid.uuid4().hex
            os.rename(self._path(upload_id), self._staging / staging_id)
        return StagedBlob(digest=digest, size=size, staging_id=staging_id)

    def cancel(self, upload_id: str) -> None:
        self._states.pop(upload_id, None)
        unlink_quietly(self._path(upload_id))

    # -- internals -----------------------------------------------------------

    def _path(self, upload_id: str) -> Path:
        if not (isinstance(upload_id, str) and _UPLOAD_ID.fullmatch(upload_id)):
            raise BlobNotFound(f"upload {upload_id!r}")
        return self._dir / upload_id

    @contextlib.contextmanager
    def _locked(self, upload_id: str) -> Iterator[int]:
        """Open the upload with an exclusive lock; a second writer is refused, not queued."""
        try:
            fd = os.open(self._path(upload_id), os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise BlobNotFound(f"upload {upload_id}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                size = os.fstat(fd).st_size
                raise UploadRangeInvalid(upload_id, size, size) from None
            yield fd
        finally:
            os.close(fd)

    async def _hash_state(self, upload_id: str, fd: int, size: int) -> hashlib._Hash:
        """A copy of the remembered state if it covers ``size`` bytes, else a re-read."""
        remembered = self._states.get(upload_id)
        if remembered is not None and remembered[0] == size:
            return remembered[1].copy()
        return await anyio.to_thread.run_sync(_rehash, fd, size)

    def _remember(self, upload_id: str, size: int, hasher: hashlib._Hash) -> None:
        self._states[upload_id] = (size, hasher)
        self._states.move_to_end(upload_id)
        while len(self._states) > HASH_STATES_KEPT:
            self._states.popitem(last=False)


def _rehash(fd: int, size: int) -> hashlib._Hash:
    hasher = hashlib.sha256()
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(REHASH_CHUNK, size - offset), offset)
        if not chunk:
            break
        hasher.update(chunk)
        offset += len(chunk)
    return hasher
