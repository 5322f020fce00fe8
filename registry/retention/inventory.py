"""Read every live version a run considers, in three bulk queries.

A pass over 100,000 versions cannot afford a query per version: versions
(with repository and package), their tags and their files are read with one
Core statement each and joined in memory into
:class:`~registry.retention.engine.VersionInfo`.

OCI manifests with a ``subject`` (the SBOM referrers the registry attaches,
signatures, attestations) are accessories of their image, as in Harbor's tag
retention: while their subject lives, rules neither select them nor count
them among an image's versions, or "keep the last 10" would keep five images
and their SBOMs. An accessory whose subject is gone is an untagged version
like any other, so the next run's ``untagged`` rule removes it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, Table, exists, select

from registry.db.models import ArtifactFile, Package, Repository, Tag, Version
from registry.db.oci_models import OciManifest
from registry.retention.engine import VersionInfo


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


_R, _P, _V = _table(Repository), _table(Package), _table(Version)
_T, _F = _table(Tag), _table(ArtifactFile)
_M = _table(OciManifest)
_SUBJECT = _M.alias("subject")
# A manifest whose subject is still a live manifest of the same image; once the
# subject is gone the accessory is an ordinary (untagged) version again.
_ACCESSORY = exists().where(
    _M.c.version_id == _V.c.id,
    _M.c.subject_digest.is_not(None),
    exists().where(
        _SUBJECT.c.repository_id == _M.c.repository_id,
        _SUBJECT.c.image == _M.c.image,
        _SUBJECT.c.digest == _M.c.subject_digest,
    ),
)


def utc(moment: datetime | None) -> datetime | None:
    """Aware UTC: SQLite hands back naive datetimes for what was stored as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _scoped(query: Select[Any], repository: str | None) -> Select[Any]:
    return query if repository is None else query.where(_R.c.name == repository)


def load(conn: Connection, repository: str | None = None) -> list[VersionInfo]:
    """Every version (of one repository, or all), with tags and file blobs."""
    joined = _V.join(_P, _P.c.id == _V.c.package_id).join(_R, _R.c.id == _P.c.repository_id)
    rows = conn.execute(
        _scoped(
            select(
                _V.c.id,
                _R.c.name,
                _R.c.format,
                _P.c.name,
                _V.c.version,
                _V.c.created_at,
                _V.c.last_pulled_at,
            )
            .select_from(joined)
            .where(~_ACCESSORY),
            repository,
        )
    ).all()
    tags: dict[int, list[str]] = defaultdict(list)
    tag_rows = conn.execute(
        _scoped(
            select(_T.c.version_id, _T.c.name).select_from(
                _T.join(_V, _V.c.id == _T.c.version_id)
                .join(_P, _P.c.id == _V.c.package_id)
                .join(_R, _R.c.id == _P.c.repository_id)
            ),
            repository,
        )
    )
    for version_id, name in tag_rows:
        tags[version_id].append(name)
    blobs: dict[int, list[tuple[str, int]]] = defaultdict(list)
    file_rows = conn.execute(
        _scoped(
            select(_F.c.version_id, _F.c.blob_digest, _F.c.size).select_from(
                _F.join(_V, _V.c.id == _F.c.version_id)
                .join(_P, _P.c.id == _V.c.package_id)
                .join(_R, _R.c.id == _P.c.repository_id)
            ),
            repository,
        )
    )
    for version_id, digest, size in file_rows:
        blobs[version_id].append((digest, int(size)))
    return [
        VersionInfo(
            id=vid,
            repository=repo,
            format=fmt,
            package=package,
            version=version,
            created_at=utc(created) or datetime.min.replace(tzinfo=UTC),
            last_pulled_at=utc(pulled),
            tags=tuple(sorted(tags.get(vid, ()))),
            blobs=tuple(blobs.get(vid, ())),
        )
        for vid, repo, fmt, package, version, created, pulled in rows
    ]
