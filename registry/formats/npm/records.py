"""npm rows: packages, versions, tarballs and dist-tags of an ``npm`` repository.

These functions run inside the governance layer's transaction (as the
``apply`` of a governed action); they never commit on their own. A version's
manifest (the publish document's ``versions[v]``) is kept in ``Version.meta``
and served back in packuments; its tarball is an :class:`ArtifactFile` whose
``meta`` holds ``integrity`` and ``shasum``; dist-tags are :class:`Tag` rows.
A published version is never replaced: npm's rule, which lockfiles rely on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from registry.blobs import BlobRef
from registry.catalog import package_in, version_of
from registry.db.models import ArtifactFile, Label, Package, Tag, Version
from registry.errors import Conflict, NotFound
from registry.formats.npm.lookups import FORMAT

TARBALL_MEDIA_TYPE = "application/octet-stream"


def _package(session: Session, repository: str, name: str, *, create: bool) -> Package | None:
    return package_in(session, repository, name, create=create, fmt=FORMAT)


def _version(session: Session, repository: str, name: str, version: str) -> Version:
    package = _package(session, repository, name, create=False)
    row = version_of(session, package, version) if package is not None else None
    if row is None:
        raise NotFound(f"{name}@{version} is not in this registry")
    return row


def add_version(
    session: Session,
    repository: str,
    *,
    name: str,
    version: str,
    manifest: dict[str, Any],
    filename: str,
    ref: BlobRef,
    file_meta: dict[str, Any],
    created_by: str,
) -> Version:
    """Record a published version and its tarball."""
    package = _package(session, repository, name, create=True)
    assert package is not None
    existing = session.exec(
        select(Version).where(Version.package_id == package.id, Version.version == version)
    ).first()
    if existing is not None:
        raise Conflict(
            f"cannot publish over the previously published version {name}@{version}; "
            "bump the version"
        )
    row = Version(package_id=package.id or 0, version=version, created_by=created_by, meta=manifest)
    session.add(row)
    session.flush()
    session.add(
        ArtifactFile(
            version_id=row.id or 0,
            filename=filename,
            blob_digest=ref.digest,
            size=ref.size,
            media_type=TARBALL_MEDIA_TYPE,
            meta=file_meta,
        )
    )
    session.flush()
    return row


def set_tag(session: Session, repository: str, name: str, tag: str, version: str) -> None:
    """Point ``tag`` at ``version`` (creating the tag if new)."""
    row = _version(session, repository, name, version)
    existing = session.exec(
        select(Tag).where(Tag.package_id == row.package_id, Tag.name == tag)
    ).first()
    if existing is None:
        session.add(Tag(package_id=row.package_id, name=tag, version_id=row.id or 0))
    else:
        existing.version_id = row.id or 0
        existing.updated_at = datetime.now(UTC)
        session.add(existing)
    session.flush()


def remove_tag(session: Session, repository: str, name: str, tag: str) -> None:
    package = _package(session, repository, name, create=False)
    row = None
    if package is not None:
        row = session.exec(select(Tag).where(Tag.package_id == package.id, Tag.name == tag)).first()
    if row is None:
        raise NotFound(f"{name} has no dist-tag {tag}")
    session.delete(row)
    session.flush()


def set_deprecated(
    session: Session, repository: str, name: str, version: str, message: str | None
) -> None:
    """Deprecate (a message) or undeprecate (None) one version."""
    row = _version(session, repository, name, version)
    manifest = {k: v for k, v in row.meta.items() if k != "deprecated"}
    if message:
        manifest["deprecated"] = message
    row.meta = manifest  # a new dict: JSON columns do not track changes in place
    session.add(row)
    session.flush()


def delete_version(session: Session, repository: str, name: str, version: str) -> None:
    """Remove a version, its tarball row and its tags; the package goes with its last version.

    The tarball's blob stays until garbage collection.
    """
    row = _version(session, repository, name, version)
    for model in (ArtifactFile, Label, Tag):
        for child in session.exec(select(model).where(model.version_id == row.id)):
            session.delete(child)
    session.flush()
    package_id = row.package_id
    session.delete(row)
    session.flush()
    if session.exec(select(Version.id).where(Version.package_id == package_id)).first() is None:
        package = session.get(Package, package_id)
        if package is not None:
            session.delete(package)
            session.flush()
