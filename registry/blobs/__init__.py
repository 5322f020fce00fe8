"""Content-addressed blob storage: the :class:`BlobStore` contract and its backends.

Backends are chosen from settings in ``registry.services`` and injected;
everything else asks only for a :class:`BlobStore`.
"""

from registry.blobs.filesystem import FilesystemBlobStore
from registry.blobs.store import (
    BlobError,
    BlobNotFound,
    BlobRef,
    BlobStore,
    BlobTooLarge,
    DigestMismatch,
    InvalidDigest,
    StagedBlob,
    UploadRangeInvalid,
    Uploads,
    expected_digest,
    format_digest,
    parse_digest,
)
from registry.blobs.uploads import FilesystemUploads

__all__ = [
    "BlobError",
    "BlobNotFound",
    "BlobRef",
    "BlobStore",
    "BlobTooLarge",
    "DigestMismatch",
    "FilesystemBlobStore",
    "FilesystemUploads",
    "InvalidDigest",
    "StagedBlob",
    "UploadRangeInvalid",
    "Uploads",
    "expected_digest",
    "format_digest",
    "parse_digest",
]
