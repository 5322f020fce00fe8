"""Python package rows: projects, releases and files of a ``pypi`` repository.

These functions run inside the governance layer's transaction (as the
``apply`` of a governed action); they never commit on their own. A project
is a :class:`Package` named by its normalised name, a release a
:class:`Version` (normalised PEP 440 string, core metadata in ``meta``), and
each distribution an :class:`ArtifactFile` whose ``meta`` holds what the
simple API serves (hashes, requires-python, yanked, the digest of its PEP
658 metadata file). A wheel's METADATA is a file of its own, ``<wheel>.metadata``,
so garbage collection keeps its blob and downloads serve it like any file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from registry.blobs import BlobRef
from registry.catalog import package_in, version_of
from registry.db.models import ArtifactFile, Package, Version
from registry.errors import Conflict, NotFound
from registry.formats.pypi.lookups import FORMAT

METADATA_SUFFIX = ".metadata"
METADATA_MEDIA_TYPE = "text/plain; charset=utf-8"
WHEEL_MEDIA_TYPE = "application/zip"
SDIST_MEDIA_TYPE = "application/gzip"


def _project(session: Session, repository: str, name: str, *, create: bool) -> Package | None:
    return package_in(session, repository, name, create=create, fmt=FORMAT, fmt_label="Python")


def add_distribution(
    session: Session,
    repository: str,
    *,
    name: str,
    version: str,
    filename: str,
    ref: BlobRef,
    media_type: str,
    release_meta: dict[str, Any],
    file_meta: dict[str, Any],
    metadata_ref: BlobRef | None,
    created_by: str,
) -> bool:
    """Record an uploaded distribution; False when the identical file was already there.

    A file name is never reused for other bytes (PyPI's rule, which lets
    installers trust a hash they saw once): that upload is a conflict.
    """
    package = _project(session, repository, name, create=True)
    assert package is not None
    release = version_of(session, package, version)
    if release is None:
        release = Version(
            package_id=package.id or 0, version=version, created_by=created_by, meta=release_meta
        )
        session.add(release)
        session.flush()
    existing = session.exec(
        select(ArtifactFile).where(
            ArtifactFile.version_id == release.id, ArtifactFile.filename == filename
        )
    ).first()
    if existing is not None:
        if existing.blob_digest == ref.digest:
            return False
        raise Conflict(
            f"File already exists: {filename} was uploaded before with other content "
            f"(sha256 {existing.blob_digest.removeprefix('sha256:')}); files cannot be "
            "overwritten, publish a new version (or a post-release) instead"
        )
    now = datetime.now(UTC)
    session.add(
        ArtifactFile(
            version_id=release.id or 0,
            filename=filename,
            blob_digest=ref.digest,
            size=ref.size,
            media_type=media_type,
            meta=file_meta,
            created_at=now,
        )
    )
    if metadata_ref is not None:
        session.add(
            ArtifactFile(
                version_id=release.id or 0,
                filename=filename + METADATA_SUFFIX,
                blob_digest=metadata_ref.digest,
                size=metadata_ref.size,
                media_type=METADATA_MEDIA_TYPE,
                meta={"metadata_of": filename},
                created_at=now,
            )
        )
    session.flush()
    return True


def set_yanked(
    session: Session, repository: str, name: str, version: str, reason: str | None
) -> int:
    """Yank (``reason`` a string, possibly empty) or un-yank (None) every file of a release."""
    package = _project(session, repository, name, create=False)
    release = version_of(session, package, version) if package is not None else None
    if release is None:
        raise NotFound(f"release {name} {version} not found")
    files = session.exec(select(ArtifactFile).where(ArtifactFile.version_id == release.id)).all()
    changed = 0
    for row in files:
        if row.meta.get("metadata_of"):
            continue
        meta = {k: v for k, v in row.meta.items() if k not in ("yanked", "yanked_reason")}
        if reason is not None:
            meta.update(yanked=True, yanked_reason=reason)
        row.meta = meta  # a new dict: JSON columns do not track changes in place
        session.add(row)
        changed += 1
    session.flush()
    return changed
