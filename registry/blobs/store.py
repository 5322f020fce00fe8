"""The blob store contract: content-addressed bytes, staged before they are kept.

DESIGN.md decides a push twice; between the two decisions the bytes wait in
*staging*, where nobody can pull them. ``stage`` streams a body into staging
while hashing it, ``commit`` makes it visible under its digest and ``discard``
forgets it. Every backend (filesystem now, S3 later) implements
:class:`BlobStore`; callers never learn which one they hold.

The errors live beside the contract and are :class:`~registry.errors.ArbiterError`
subclasses, so an adapter that lets one escape renders a useful status.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from registry.errors import ArbiterError

ALGORITHM = "sha256"
PREFIX = "sha256:"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_BARE_HEX = re.compile(r"[0-9a-fA-F]{64}")


class BlobError(ArbiterError):
    """Root of every blob store error."""

    status = 500
    code = "BLOB_ERROR"


class InvalidDigest(BlobError):
    """A digest string is not ``sha256:`` followed by 64 lowercase hex digits."""

    status = 400
    code = "DIGEST_INVALID"

    def __init__(self, value: object, why: str = "") -> None:
        self.value = value
        hint = f" ({why})" if why else ""
        super().__init__(
            f"invalid digest {value!r}{hint}: write it as 'sha256:' followed by"
            " 64 lowercase hexadecimal characters"
        )


class DigestMismatch(BlobError):
    """The bytes received do not hash to the digest the client stated."""

    status = 400
    code = "DIGEST_MISMATCH"

    def __init__(self, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"checksum mismatch: the client stated {expected} but the body hashes to"
            f" {actual}; nothing was stored, re-send the file or correct the checksum"
        )


class BlobTooLarge(BlobError):
    """The body grew past the size limit; reading stopped there."""

    status = 413
    code = "TOO_LARGE"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"the body is larger than the maximum upload size of {limit} bytes;"
            " nothing was stored (raise ARBITER_MAX_UPLOAD_SIZE to accept it)"
        )


class BlobNotFound(BlobError):
    """No blob (or staged blob, or upload) by that name is in the store."""

    status = 404
    code = "BLOB_UNKNOWN"

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what} is not in the blob store")


class UploadRangeInvalid(BlobError):
    """A chunk of a resumable upload does not start where the upload ends."""

    status = 416
    code = "RANGE_INVALID"

    def __init__(self, upload_id: str, offset: int, size: int) -> None:
        self.offset = offset
        self.size = size
        super().__init__(
            f"upload {upload_id} holds {size} bytes but the chunk starts at {offset};"
            f" resume from byte {size}"
        )


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A committed blob: visible under ``digest`` to anyone who may pull it."""

    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class StagedBlob:
    """Bytes that were received and hashed but are not visible yet.

    ``staging_id`` names the staged copy inside the store that made it; it is
    meaningless to any other store.
    """

    digest: str
    size: int
    staging_id: str


def parse_digest(digest: object) -> str:
    """Return the hex part of a strict ``sha256:<64 lowercase hex>`` digest.

    Raises :class:`InvalidDigest` for anything else, so a digest that came
    from a URL can never name a path outside the store.
    """
    if not isinstance(digest, str):
        raise InvalidDigest(digest, "not a string")
    if _DIGEST.fullmatch(digest) is None:
        why = "unsupported algorithm" if not digest.startswith(PREFIX) else "bad hex part"
        raise InvalidDigest(digest, why)
    return digest[len(PREFIX) :]


def format_digest(hex_digest: str) -> str:
    """``abc...`` -> ``sha256:abc...`` (validated)."""
    digest = PREFIX + hex_digest
    parse_digest(digest)
    return digest


def expected_digest(value: str | None) -> str | None:
    """Normalise a client-stated checksum: bare hex (any case) or a strict digest.

    ``X-Checksum-Sha256`` headers carry bare hex; OCI carries ``sha256:...``.
    """
    if value is None:
        return None
    if _BARE_HEX.fullmatch(value):
        return PREFIX + value.lower()
    parse_digest(value)
    return value


class Uploads(Protocol):
    """Resumable uploads: a blob sent in chunks whose digest is named at the end (OCI).

    ``finish`` turns an upload into an ordinary :class:`StagedBlob`, which then
    waits for the second decision like any other.
    """

    def start(self) -> str:
        """Open an empty upload; returns its id."""
        ...

    def size(self, upload_id: str) -> int:
        """Bytes received so far; raises :class:`BlobNotFound`."""
        ...

    async def append(
        self,
        upload_id: str,
        chunks: AsyncIterable[bytes],
        *,
        offset: int | None = None,
        max_size: int | None = None,
    ) -> int:
        """Append a chunk (all or nothing) and return the new size.

        Raises :class:`UploadRangeInvalid` when ``offset`` is not the current
        size or another chunk is being written, :class:`BlobTooLarge` when the
        upload would exceed ``max_size``.
        """
        ...

    async def finish(self, upload_id: str, *, expected_sha256: str | None = None) -> StagedBlob:
        """Close the upload into staging; :class:`DigestMismatch` removes it."""
        ...

    def cancel(self, upload_id: str) -> None:
        """Forget an upload; a no-op when it is gone."""
        ...


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed blob storage with a staging area.

    ``stage`` is async because it consumes a request body; the other calls
    are quick, synchronous and safe to make from a worker thread (governance
    commits inside its database transaction, off the event loop).
    """

    async def stage(
        self,
        chunks: AsyncIterable[bytes],
        *,
        expected_sha256: str | None = None,
        max_size: int | None = None,
    ) -> StagedBlob:
        """Stream ``chunks`` into staging, hashing as they arrive.

        Raises :class:`BlobTooLarge` as soon as more than ``max_size`` bytes
        arrived and :class:`DigestMismatch` when ``expected_sha256`` (bare hex
        or ``sha256:<hex>``) disagrees; either way nothing is left behind.
        """
        ...

    def commit(self, staged: StagedBlob) -> BlobRef:
        """Make a staged blob visible under its digest (deduplicated)."""
        ...

    def discard(self, staged: StagedBlob) -> None:
        """Forget a staged blob; a no-op once it was committed or discarded."""
        ...

    def open_staged(self, staged: StagedBlob) -> BinaryIO:
        """Read a staged blob (for analysis before the second decision)."""
        ...

    def exists(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int:
        """Size in bytes; raises :class:`BlobNotFound`."""
        ...

    def path_of(self, digest: str) -> Path:
        """A local file holding the blob, for zero-copy responses; raises :class:`BlobNotFound`."""
        ...

    def iter_range(
        self, digest: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Bytes ``start`` up to (not including) ``end`` of a blob, in chunks."""
        ...

    def delete(self, digest: str) -> bool:
        """Remove a blob; ``False`` when it was not there."""
        ...

    def delete_if_idle(self, digest: str, since: datetime) -> bool:
        """Remove a blob unless it was committed or deduplicated into at or after ``since``.

        The garbage collector's delete: ``commit`` of bytes already stored
        refreshes their time, so a push racing the sweep keeps them. ``False``
        when the blob stays (or was not there).
        """
        ...

    def iter_digests(self) -> Iterator[str]:
        """Every committed digest (for garbage collection)."""
        ...

    def sweep_staging(self, older_than: timedelta) -> int:
        """Remove staged bytes and uploads untouched for ``older_than``; returns the count."""
        ...

    @property
    def uploads(self) -> Uploads:
        """Chunked, resumable uploads into this store's staging area."""
        ...
