"""Generic artifact rows: packages, versions and files of a generic repository.

These functions run inside the governance layer's transaction (as the
``apply`` of a governed action); they never commit on their own.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from registry.blobs import BlobRef
from registry.catalog import package_in, version_of
from registry.db.models import ArtifactFile, Label, Package, Tag, Version
from registry.errors import Conflict, NotFound


def _package(session: Session, repository: str, name: str, *, create: bool) -> Package | None:
    """The package in a generic repository (a PUT into an npm one is refused, 400)."""
    return package_in(
        session, repository, name, create=create, fmt="generic", fmt_label="generic files"
    )


def _version(session: Session, package: Package, version: str, *, create: bool) -> Version | None:
    row = version_of(session, package, version)
    if row is None and create:
        row = Version(package_id=package.id or 0, version=version)
        session.add(row)
        session.flush()
    return row


def add_file(
    session: Session,
    repository: str,
    package_name: str,
    version_name: str,
    filename: str,
    ref: BlobRef,
    *,
    created_by: str,
    media_type: str,
    provenance: dict[str, Any],
) -> ArtifactFile:
    """Record an uploaded file; an existing file with other content is a conflict."""
    package = _package(session, repository, package_name, create=True)
    assert package is not None
    version = _version(session, package, version_name, create=True)
    assert version is not None
    if not version.created_by:
        version.created_by = created_by
        version.provenance = provenance
        session.add(version)
    existing = session.exec(
        select(ArtifactFile).where(
            ArtifactFile.version_id == version.id, ArtifactFile.filename == filename
        )
    ).first()
    if existing is not None:
        if existing.blob_digest == ref.digest:
            return existing
        raise Conflict(
            f"{package_name}/{version_name}/{filename} already exists with other content; "
            "delete it first or publish a new version"
        )
    row = ArtifactFile(
        version_id=version.id or 0,
        filename=filename,
        blob_digest=ref.digest,
        size=ref.size,
        media_type=media_type,
    )
    session.add(row)
    session.flush()
    return row


def find_file(
    session: Session, repository: str, package_name: str, version_name: str, filename: str
) -> tuple[Version, ArtifactFile]:
    version = require_version(session, repository, package_name, version_name)
    row = session.exec(
        select(ArtifactFile).where(
            ArtifactFile.version_id == version.id, ArtifactFile.filename == filename
        )
    ).first()
    if row is None:
        raise NotFound(f"file {package_name}/{version_name}/{filename} not found")
    return version, row


def require_version(
    session: Session, repository: str, package_name: str, version_name: str
) -> Version:
    package = _package(session, repository, package_name, create=False)
    version = _version(session, package, version_name, create=False) if package else None
    if version is None:
        raise NotFound(f"version {package_name}/{version_name} not found")
    return version


def list_versions(session: Session, repository: str, package_name: str) -> list[dict[str, Any]]:
    package = _package(session, repository, package_name, create=False)
    if package is None:
        raise NotFound(f"package {package_name} not found")
    versions = session.exec(
        select(Version).where(Version.package_id == package.id).order_by(col(Version.created_at))
    ).all()
    return [
        {
            "version": v.version,
            "created_at": v.created_at.isoformat(),
            "created_by": v.created_by,
            "downloads": v.downloads,
        }
        for v in versions
    ]


def list_files(
    session: Session, repository: str, package_name: str, version_name: str
) -> list[dict[str, Any]]:
    version = require_version(session, repository, package_name, version_name)
    files = session.exec(
        select(ArtifactFile)
        .where(ArtifactFile.version_id == version.id)
        .order_by(col(ArtifactFile.filename))
    ).all()
    return [
        {
            "filename": f.filename,
            "size": f.size,
            "sha256": f.blob_digest.removeprefix("sha256:"),
            "digest": f.blob_digest,
            "media_type": f.media_type,
            "created_at": f.created_at.isoformat(),
        }
        for f in files
    ]


def delete_file(
    session: Session, repository: str, package_name: str, version_name: str, filename: str
) -> None:
    """Remove one file's row; its blob stays until garbage collection."""
    version, row = find_file(session, repository, package_name, version_name, filename)
    session.delete(row)
    session.flush()
    remaining = session.exec(
        select(ArtifactFile.id).where(ArtifactFile.version_id == version.id)
    ).first()
    if remaining is None:
        _delete_version_rows(session, version)


def delete_version(session: Session, repository: str, package_name: str, version_name: str) -> None:
    version = require_version(session, repository, package_name, version_name)
    for row in session.exec(select(ArtifactFile).where(ArtifactFile.version_id == version.id)):
        session.delete(row)
    session.flush()
    _delete_version_rows(session, version)


def _delete_version_rows(session: Session, version: Version) -> None:
    for model in (Label, Tag):
        for row in session.exec(select(model).where(model.version_id == version.id)):
            session.delete(row)
    package_id = version.package_id
    session.delete(version)
    session.flush()
    if session.exec(select(Version.id).where(Version.package_id == package_id)).first() is None:
        package = session.get(Package, package_id)
        if package is not None:
            session.delete(package)
            session.flush()
