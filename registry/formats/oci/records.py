"""OCI rows: images, manifests, tags and blob links of an OCI repository.

Lookups run in a reader session before a decision (to name the artifact the
policy decides on); the functions that change rows run only as the ``apply``
of a governed action, inside its transaction, and never commit on their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from registry.blobs import BlobRef
from registry.db.models import ArtifactFile, Label, Package, Repository, Tag, Version
from registry.db.oci_models import LINKED, STAGED, OciBlobLink, OciManifest, OciUpload
from registry.errors import NotFound
from registry.formats.oci.errors import OciError
from registry.formats.oci.manifest import Manifest

FORMAT = "oci"
MANIFEST_FILE = "manifest.json"


def oci_repository(session: Session, name: str) -> Repository:
    """The repository ``name``; NAME_UNKNOWN when missing or of another format."""
    repository = session.exec(select(Repository).where(Repository.name == name)).first()
    if repository is None:
        raise NotFound(
            f"repository {name!r} not found; "
            f"create it with 'arbiter repo create {name} --format oci'"
        )
    if repository.format != FORMAT:
        raise OciError(
            "NAME_UNKNOWN",
            f"repository {name!r} holds {repository.format} artifacts, not OCI images",
        )
    return repository


def repository_id(repository: Repository) -> int:
    assert repository.id is not None
    return repository.id


# -- lookups -------------------------------------------------------------------


def package(session: Session, repo_id: int, image: str) -> Package | None:
    return session.exec(
        select(Package).where(Package.repository_id == repo_id, Package.name == image)
    ).first()


def manifest_by_digest(
    session: Session, repo_id: int, image: str, digest: str
) -> OciManifest | None:
    return session.exec(
        select(OciManifest).where(
            OciManifest.repository_id == repo_id,
            OciManifest.image == image,
            OciManifest.digest == digest,
        )
    ).first()


def tag_digest(session: Session, repo_id: int, image: str, tag: str) -> str | None:
    """Where ``tag`` points now, or None."""
    return session.exec(
        select(Version.version)
        .join(Tag, col(Tag.version_id) == col(Version.id))
        .join(Package, col(Package.id) == col(Tag.package_id))
        .where(Package.repository_id == repo_id, Package.name == image, Tag.name == tag)
    ).first()


def resolve(session: Session, repo_id: int, image: str, reference: str) -> OciManifest | None:
    """The manifest a tag or digest names in the image."""
    digest = reference if ":" in reference else tag_digest(session, repo_id, image, reference)
    return None if digest is None else manifest_by_digest(session, repo_id, image, digest)


def blob_link(session: Session, repo_id: int, image: str, digest: str) -> OciBlobLink | None:
    return session.exec(
        select(OciBlobLink).where(
            OciBlobLink.repository_id == repo_id,
            OciBlobLink.image == image,
            OciBlobLink.digest == digest,
        )
    ).first()


def any_link(session: Session, repo_id: int, digest: str) -> OciBlobLink | None:
    """A link of ``digest`` in any image of the repository (mount without ``from``)."""
    return session.exec(
        select(OciBlobLink).where(
            OciBlobLink.repository_id == repo_id, OciBlobLink.digest == digest
        )
    ).first()


@dataclass(frozen=True)
class Missing:
    """A descriptor a manifest names that the image does not hold."""

    digest: str
    kind: str  # "blob" or "manifest"


def missing_references(
    session: Session, repo_id: int, image: str, manifest: Manifest
) -> list[Missing]:
    """Blobs and child manifests the manifest names that are not in the image."""
    missing = [
        Missing(d.digest, "blob")
        for d in manifest.blobs()
        if blob_link(session, repo_id, image, d.digest) is None
    ]
    missing += [
        Missing(d.digest, "manifest")
        for d in manifest.manifests
        if manifest_by_digest(session, repo_id, image, d.digest) is None
    ]
    return missing


def copies_of(session: Session, digest: str, repo_id: int, image: str) -> dict[str, Any] | None:
    """Another place the same manifest already lives (a copy's source, for lineage)."""
    row = session.exec(
        select(OciManifest, Repository.name)
        .join(Repository, col(Repository.id) == col(OciManifest.repository_id))
        .where(OciManifest.digest == digest)
        .where((OciManifest.repository_id != repo_id) | (OciManifest.image != image))
        .order_by(col(OciManifest.id))
    ).first()
    if row is None:
        return None
    found, repository_name = row
    return {"repository": repository_name, "name": found.image, "version": found.digest}


def tags(session: Session, repo_id: int, image: str) -> list[str]:
    """Every tag of the image in byte order (as the spec's "lexical" means)."""
    names = session.exec(
        select(Tag.name)
        .join(Package, col(Package.id) == col(Tag.package_id))
        .where(Package.repository_id == repo_id, Package.name == image)
    ).all()
    return sorted(names, key=lambda name: name.encode())


def referrers(session: Session, repo_id: int, image: str, subject: str) -> list[OciManifest]:
    return list(
        session.exec(
            select(OciManifest)
            .where(
                OciManifest.repository_id == repo_id,
                OciManifest.image == image,
                OciManifest.subject_digest == subject,
            )
            .order_by(col(OciManifest.id))
        ).all()
    )


def images(session: Session, repo_id: int) -> list[str]:
    """Images of a repository that hold at least one manifest."""
    return list(
        session.exec(
            select(Package.name).where(Package.repository_id == repo_id).order_by(Package.name)
        ).all()
    )


def upload_session(session: Session, session_id: str) -> OciUpload | None:
    return session.get(OciUpload, session_id)


# -- changes (inside a governed action's transaction) ------------------------------


def link_blob(
    session: Session,
    repo_id: int,
    image: str,
    digest: str,
    ref: BlobRef,
    *,
    created_by: str,
) -> OciBlobLink:
    """Put a blob into an image, staged until a manifest references it."""
    link = blob_link(session, repo_id, image, digest)
    if link is not None:
        return link
    link = OciBlobLink(
        repository_id=repo_id,
        image=image,
        digest=digest,
        storage_digest=ref.digest,
        size=ref.size,
        state=STAGED,
        created_by=created_by,
    )
    session.add(link)
    session.flush()
    return link


def unlink_blob(session: Session, repo_id: int, image: str, digest: str) -> None:
    link = blob_link(session, repo_id, image, digest)
    if link is None:
        raise OciError("BLOB_UNKNOWN", f"blob {digest} is not in this image")
    session.delete(link)
    session.flush()


def store_manifest(
    session: Session,
    repository: Repository,
    image: str,
    digest: str,
    ref: BlobRef,
    manifest: Manifest,
    *,
    created_by: str,
) -> Version:
    """Record an allowed manifest: the image, its version, its files, its links."""
    repo_id = repository_id(repository)
    found = package(session, repo_id, image)
    if found is None:
        found = Package(repository_id=repo_id, name=image)
        session.add(found)
        session.flush()
    version = session.exec(
        select(Version).where(Version.package_id == found.id, Version.version == digest)
    ).first()
    if version is not None:
        _link_references(session, repo_id, image, manifest)
        return version
    version = Version(
        package_id=found.id or 0,
        version=digest,
        created_by=created_by,
        meta={
            "media_type": manifest.media_type,
            "artifact_type": manifest.referrer_type(),
            "subject": manifest.subject.digest if manifest.subject else None,
        },
    )
    session.add(version)
    session.flush()
    assert version.id is not None
    _add_files(session, version.id, repo_id, image, ref, manifest)
    session.add(
        OciManifest(
            version_id=version.id,
            repository_id=repo_id,
            image=image,
            digest=digest,
            storage_digest=ref.digest,
            media_type=manifest.media_type,
            artifact_type=manifest.referrer_type(),
            subject_digest=manifest.subject.digest if manifest.subject else None,
            size=ref.size,
            annotations=dict(manifest.annotations),
        )
    )
    _link_references(session, repo_id, image, manifest)
    session.flush()
    return version


def _add_files(
    session: Session, version_id: int, repo_id: int, image: str, ref: BlobRef, manifest: Manifest
) -> None:
    """The manifest itself, the blobs it references and its child manifests, as files.

    The push checked that the image holds them all; one gone since (a stale
    link the garbage collector removed, a child deleted) fails the push rather
    than store a manifest whose parts cannot be pulled.
    """
    files = {MANIFEST_FILE: (ref.digest, ref.size, manifest.media_type)}
    for descriptor in manifest.blobs():
        link = blob_link(session, repo_id, image, descriptor.digest)
        if link is None:
            raise _gone("blob", descriptor.digest)
        files.setdefault(descriptor.digest, (link.storage_digest, link.size, descriptor.media_type))
    for descriptor in manifest.manifests:
        child = manifest_by_digest(session, repo_id, image, descriptor.digest)
        if child is None:
            raise _gone("manifest", descriptor.digest)
        files.setdefault(descriptor.digest, (child.storage_digest, child.size, child.media_type))
    for filename, (blob_digest, size, media_type) in files.items():
        session.add(
            ArtifactFile(
                version_id=version_id,
                filename=filename,
                blob_digest=blob_digest,
                size=size,
                media_type=media_type,
            )
        )


def _gone(kind: str, digest: str) -> OciError:
    return OciError(
        "MANIFEST_BLOB_UNKNOWN",
        f"the manifest references {kind} {digest}, which left the image while the push "
        "was decided; push (or mount) it again, then the manifest",
        detail=[{"digest": digest, "kind": kind}],
    )


def _link_references(session: Session, repo_id: int, image: str, manifest: Manifest) -> None:
    """Blobs a manifest references stop being staged: they now belong to an artifact."""
    for descriptor in manifest.blobs():
        link = blob_link(session, repo_id, image, descriptor.digest)
        if link is not None and link.state != LINKED:
            link.state = LINKED
            session.add(link)


def set_tag(session: Session, repo_id: int, image: str, tag: str, digest: str) -> str | None:
    """Point ``tag`` at the manifest ``digest``; returns where it pointed before."""
    found = package(session, repo_id, image)
    version = (
        session.exec(
            select(Version).where(Version.package_id == found.id, Version.version == digest)
        ).first()
        if found is not None
        else None
    )
    if found is None or version is None:
        raise OciError("MANIFEST_UNKNOWN", f"manifest {digest} is not in this image")
    row = session.exec(select(Tag).where(Tag.package_id == found.id, Tag.name == tag)).first()
    if row is None:
        session.add(Tag(package_id=found.id or 0, name=tag, version_id=version.id or 0))
        session.flush()
        return None
    previous = session.get(Version, row.version_id)
    row.version_id = version.id or 0
    row.updated_at = datetime.now(UTC)
    session.add(row)
    session.flush()
    return previous.version if previous is not None else None


def delete_tag(session: Session, repo_id: int, image: str, tag: str) -> None:
    found = package(session, repo_id, image)
    row = (
        session.exec(select(Tag).where(Tag.package_id == found.id, Tag.name == tag)).first()
        if found is not None
        else None
    )
    if row is None:
        raise OciError("MANIFEST_UNKNOWN", f"tag {tag} is not in this image")
    session.delete(row)
    session.flush()


def delete_manifest(session: Session, repo_id: int, image: str, digest: str) -> None:
    """Remove a manifest, its tags and files.

    Its blobs stay in the image; those no other manifest of the image
    references become staged again, grace from now: unless a new manifest
    claims them first, the garbage collector removes their links (and then
    the bytes nothing else references) once its grace period is over.
    """
    row = manifest_by_digest(session, repo_id, image, digest)
    if row is None:
        raise OciError("MANIFEST_UNKNOWN", f"manifest {digest} is not in this image")
    version = session.get(Version, row.version_id)
    session.delete(row)
    session.flush()
    if version is None:
        return
    referenced = session.exec(
        select(ArtifactFile.filename).where(ArtifactFile.version_id == version.id)
    ).all()
    session.execute(delete(Tag).where(col(Tag.version_id) == version.id))
    session.execute(delete(Label).where(col(Label.version_id) == version.id))
    session.execute(delete(ArtifactFile).where(col(ArtifactFile.version_id) == version.id))
    package_id = version.package_id
    session.delete(version)
    session.flush()
    _restage_orphans(session, repo_id, image, package_id, referenced)
    if session.exec(select(Version.id).where(Version.package_id == package_id)).first() is None:
        empty = session.get(Package, package_id)
        if empty is not None:
            session.delete(empty)
            session.flush()


def _restage_orphans(
    session: Session, repo_id: int, image: str, package_id: int, digests: Iterable[str]
) -> None:
    """Links no remaining manifest of the image references go back to staged, grace from now."""
    for digest in digests:
        still = session.exec(
            select(ArtifactFile.id)
            .join(Version, col(Version.id) == col(ArtifactFile.version_id))
            .where(Version.package_id == package_id, ArtifactFile.filename == digest)
        ).first()
        link = blob_link(session, repo_id, image, digest)
        if still is None and link is not None and link.state == LINKED:
            link.state = STAGED
            link.created_at = datetime.now(UTC)
            session.add(link)
    session.flush()


def start_upload(
    session: Session, session_id: str, repo_id: int, image: str, subject_id: str, upload_id: str
) -> None:
    session.add(
        OciUpload(
            id=session_id,
            repository_id=repo_id,
            image=image,
            subject_id=subject_id,
            upload_id=upload_id,
        )
    )
    session.flush()


def end_upload(session: Session, session_id: str) -> None:
    session.execute(delete(OciUpload).where(col(OciUpload.id) == session_id))


def count_staged(session: Session, repo_ids: Iterable[int]) -> int:
    """Staged links in the repositories (for tests and the sweep's report)."""
    return int(
        session.exec(
            select(func.count())
            .select_from(OciBlobLink)
            .where(col(OciBlobLink.repository_id).in_(list(repo_ids)), OciBlobLink.state == STAGED)
        ).one()
    )
