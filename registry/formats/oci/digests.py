"""OCI digests: ``algorithm:hex`` for the algorithms the image spec registers.

The blob store keys bytes by sha256 whatever the client names them by; a
``sha512`` digest is checked here, on the bytes the store staged, and kept
beside the store's sha256 (see ``registry.db.oci_models``).
"""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO

from registry.formats.oci.errors import OciError

SHA256 = "sha256"
SHA512 = "sha512"
HEX_LENGTH = {SHA256: 64, SHA512: 128}
_GRAMMAR = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
READ_CHUNK = 1024 * 1024


def parse(value: str) -> str:
    """``value`` if it is a well-formed digest of a supported algorithm, else DIGEST_INVALID."""
    if _GRAMMAR.fullmatch(value) is None:
        raise OciError(
            "DIGEST_INVALID",
            f"invalid digest {value!r}: write ALGORITHM:HEX, e.g. sha256: and 64 hex digits",
            detail={"digest": value},
        )
    algorithm, _, encoded = value.partition(":")
    length = HEX_LENGTH.get(algorithm)
    if length is None:
        supported = ", ".join(sorted(HEX_LENGTH))
        raise OciError(
            "DIGEST_INVALID",
            f"unsupported digest algorithm {algorithm!r}; use one of {supported}",
            detail={"digest": value},
        )
    if len(encoded) != length or any(c not in "0123456789abcdef" for c in encoded):
        raise OciError(
            "DIGEST_INVALID",
            f"invalid {algorithm} digest {value!r}: expected {length} lower-case hex digits",
            detail={"digest": value},
        )
    return value


def is_digest(reference: str) -> bool:
    """A manifest reference is a digest when it has a colon (tags cannot)."""
    return ":" in reference


def algorithm_of(digest: str) -> str:
    return digest.partition(":")[0]


def compute(data: bytes, algorithm: str = SHA256) -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def compute_file(file: BinaryIO, algorithm: str) -> str:
    """Digest of a whole file (run it in a worker thread)."""
    hasher = hashlib.new(algorithm)
    while chunk := file.read(READ_CHUNK):
        hasher.update(chunk)
    return f"{algorithm}:{hasher.hexdigest()}"
