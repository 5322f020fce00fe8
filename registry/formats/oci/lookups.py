"""The pull path's reads: one Core query per request, no ORM objects.

A manifest or blob GET names a repository, an image and a reference; these
queries resolve all of it (and refuse an unknown or non-OCI repository) in a
single round trip, because pulls are the registry's hottest path and every
one of them is also decided and audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, Table, and_, bindparam, select

from registry.db.models import Package, Repository, Tag
from registry.db.oci_models import OciBlobLink, OciManifest
from registry.db.prepared import PreparedQuery
from registry.errors import NotFound
from registry.formats.oci.errors import OciError

FORMAT = "oci"


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


_REPOSITORIES = _table(Repository)
_PACKAGES = _table(Package)
_TAGS = _table(Tag)
_MANIFESTS = _table(OciManifest)
_LINKS = _table(OciBlobLink)


@dataclass(frozen=True)
class ManifestHit:
    version_id: int
    digest: str
    storage_digest: str
    media_type: str
    size: int
    subject_digest: str | None


@dataclass(frozen=True)
class BlobHit:
    digest: str
    storage_digest: str
    size: int


def _checked(row: Any, repository: str) -> Any:
    if row is None:
        raise NotFound(
            f"repository {repository!r} not found; "
            f"create it with 'arbiter repo create {repository} --format oci'"
        )
    if row.format != FORMAT:
        raise OciError(
            "NAME_UNKNOWN",
            f"repository {repository!r} holds {row.format} artifacts, not OCI images",
        )
    return row


def _manifest_query(by_tag: bool) -> Select[Any]:
    r, m = _REPOSITORIES, _MANIFESTS
    columns = (
        r.c.format,
        m.c.version_id,
        m.c.digest,
        m.c.storage_digest,
        m.c.media_type,
        m.c.size,
        m.c.subject_digest,
    )
    if by_tag:
        p, t = _PACKAGES, _TAGS
        joined = (
            r.outerjoin(p, and_(p.c.repository_id == r.c.id, p.c.name == bindparam("image")))
            .outerjoin(t, and_(t.c.package_id == p.c.id, t.c.name == bindparam("reference")))
            .outerjoin(m, m.c.version_id == t.c.version_id)
        )
    else:
        joined = r.outerjoin(
            m,
            and_(
                m.c.repository_id == r.c.id,
                m.c.image == bindparam("image"),
                m.c.digest == bindparam("reference"),
            ),
        )
    return select(*columns).select_from(joined).where(r.c.name == bindparam("repository"))


# Built once: statement construction costs more than the query itself.
_MANIFEST_BY_TAG = PreparedQuery(_manifest_query(by_tag=True))
_MANIFEST_BY_DIGEST = PreparedQuery(_manifest_query(by_tag=False))
_BLOB = PreparedQuery(
    select(_REPOSITORIES.c.format, _LINKS.c.storage_digest, _LINKS.c.size)
    .select_from(
        _REPOSITORIES.outerjoin(
            _LINKS,
            and_(
                _LINKS.c.repository_id == _REPOSITORIES.c.id,
                _LINKS.c.image == bindparam("image"),
                _LINKS.c.digest == bindparam("digest"),
            ),
        )
    )
    .where(_REPOSITORIES.c.name == bindparam("repository"))
)


def manifest(conn: Connection, repository: str, image: str, reference: str) -> ManifestHit | None:
    """The manifest a tag or digest names in ``repository/image``."""
    query = _MANIFEST_BY_DIGEST if ":" in reference else _MANIFEST_BY_TAG
    params = {"repository": repository, "image": image, "reference": reference}
    row = _checked(query.first(conn, params), repository)
    if row.version_id is None:
        return None
    return ManifestHit(
        version_id=row.version_id,
        digest=row.digest,
        storage_digest=row.storage_digest,
        media_type=row.media_type,
        size=row.size,
        subject_digest=row.subject_digest,
    )


def blob(conn: Connection, repository: str, image: str, digest: str) -> BlobHit | None:
    """The link of ``digest`` in ``repository/image``."""
    params = {"repository": repository, "image": image, "digest": digest}
    row = _checked(_BLOB.first(conn, params), repository)
    if row.storage_digest is None:
        return None
    return BlobHit(digest=digest, storage_digest=row.storage_digest, size=row.size)
