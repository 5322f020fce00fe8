"""Several hashes of one stream in one pass, as the bytes go by.

The blob store computes the sha256 a blob is addressed by; package protocols
also name others (PyPI: md5 and blake2b-256; npm: sha1 and the sha512 of
``dist.integrity``). Hashing while the upload streams to staging saves a
second read of the file.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Protocol


class Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


_CONSTRUCTORS: dict[str, Callable[[], Hash]] = {
    "md5": lambda: hashlib.md5(usedforsecurity=False),
    "sha1": lambda: hashlib.sha1(usedforsecurity=False),
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "blake2b_256": lambda: hashlib.blake2b(digest_size=32),
}


class MultiHasher:
    """Feed bytes once, read each named digest."""

    def __init__(self, algorithms: Iterable[str]) -> None:
        self._hashes = {name: _CONSTRUCTORS[name]() for name in algorithms}
        self.size = 0

    def update(self, data: bytes) -> None:
        self.size += len(data)
        for hasher in self._hashes.values():
            hasher.update(data)

    def hexdigest(self, algorithm: str) -> str:
        return self._hashes[algorithm].hexdigest()

    def base64digest(self, algorithm: str) -> str:
        """Standard base64, as in Subresource Integrity strings (``sha512-...``)."""
        return base64.b64encode(self._hashes[algorithm].digest()).decode("ascii")

    async def tee(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """Pass ``chunks`` through unchanged, hashing each."""
        async for chunk in chunks:
            self.update(chunk)
            yield chunk
