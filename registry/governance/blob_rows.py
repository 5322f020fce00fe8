"""Commit staged bytes and the registry-wide row that says they exist.

Every format's ``apply`` does this inside the governed transaction: the bytes
move into their content address, and the ``blobs`` row (shared by every
repository and format) is added once.
"""

from __future__ import annotations

from sqlmodel import Session

from registry.blobs import BlobRef, BlobStore, StagedBlob
from registry.db.models import Blob


def commit_blob(
    session: Session, blobs: BlobStore, staged: StagedBlob, media_type: str = ""
) -> BlobRef:
    """Commit ``staged`` and record its row if new; the committed blob."""
    ref = blobs.commit(staged)
    ensure_blob_row(session, ref, media_type)
    return ref


def ensure_blob_row(session: Session, ref: BlobRef, media_type: str = "") -> None:
    if session.get(Blob, ref.digest) is None:
        session.add(Blob(digest=ref.digest, size=ref.size, media_type=media_type))
        session.flush()
