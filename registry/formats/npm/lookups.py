"""The read path: a package's versions, tarballs and dist-tags through prebuilt Core queries.

``npm install`` reads a packument and a tarball per dependency, each decided
and audited, so these statements are built once and resolve the repository
(refusing one that is missing or of another format) in the same round trip.

A package is read as a :class:`Snapshot`: its rows as the database holds
them, manifests still JSON text. The rows are the whole source of a
packument, so a document rendered from equal rows is the same document
(:mod:`registry.formats.npm.rendered` reuses it); the manifests are parsed
only when a document is rendered or a version looked into.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, Table, Text, and_, bindparam, cast, select

from registry.catalog import checked_repository
from registry.db.models import ArtifactFile, Package, Repository, Tag, Version
from registry.db.prepared import PreparedQuery

FORMAT = "npm"


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


_R, _P, _V = _table(Repository), _table(Package), _table(Version)
_F, _T = _table(ArtifactFile), _table(Tag)


@dataclass(frozen=True)
class Tarball:
    filename: str
    digest: str
    size: int
    meta: dict[str, Any]


@dataclass(frozen=True)
class VersionRow:
    id: int
    version: str
    manifest: dict[str, Any]
    created_at: datetime
    tarball: Tarball | None


@dataclass
class PackageState:
    """Everything a packument shows: versions (in publish order) and dist-tags."""

    name: str
    versions: list[VersionRow] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    def version(self, version: str) -> VersionRow | None:
        return next((v for v in self.versions if v.version == version), None)

    @property
    def modified(self) -> datetime | None:
        return max((v.created_at for v in self.versions), default=None)


def _checked(row: Any, repository: str) -> Any:
    return checked_repository(row, repository, FORMAT, "npm")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# The manifests come as the JSON text stored (the cast skips the column's parsing,
# and is the text itself on SQLite and PostgreSQL's json alike).
_VERSIONS = PreparedQuery(
    select(
        _R.c.format,
        _P.c.id.label("package_id"),
        _V.c.id.label("version_id"),
        _V.c.version,
        cast(_V.c.meta, Text).label("meta"),
        _V.c.created_at,
        _F.c.filename,
        _F.c.blob_digest,
        _F.c.size,
        cast(_F.c.meta, Text).label("file_meta"),
    )
    .select_from(
        _R.outerjoin(_P, and_(_P.c.repository_id == _R.c.id, _P.c.name == bindparam("name")))
        .outerjoin(_V, _V.c.package_id == _P.c.id)
        .outerjoin(_F, _F.c.version_id == _V.c.id)
    )
    .where(_R.c.name == bindparam("repository"))
    .order_by(_V.c.id)
)
_TAGS = PreparedQuery(
    select(_T.c.name, _V.c.version)
    .select_from(_T.join(_V, _V.c.id == _T.c.version_id))
    .where(_T.c.package_id == bindparam("package_id"))
)
_TARBALL = PreparedQuery(
    select(
        _R.c.format,
        _V.c.id.label("version_id"),
        _F.c.filename,
        _F.c.blob_digest,
        _F.c.size,
        _F.c.meta,
    )
    .select_from(
        _R.outerjoin(_P, and_(_P.c.repository_id == _R.c.id, _P.c.name == bindparam("name")))
        .outerjoin(_V, and_(_V.c.package_id == _P.c.id, _V.c.version == bindparam("version")))
        .outerjoin(_F, and_(_F.c.version_id == _V.c.id, _F.c.filename == bindparam("filename")))
    )
    .where(_R.c.name == bindparam("repository"))
)
_REPOSITORY = select(_R.c.format).where(_R.c.name == bindparam("repository"))


def repository_exists(conn: Connection, repository: str) -> None:
    _checked(conn.execute(_REPOSITORY, {"repository": repository}).first(), repository)


# Every column of every row read (a version with its manifest text and its tarball),
# in publish order; then the dist-tags in the order read.
Source = tuple[tuple[tuple[Any, ...], ...], tuple[tuple[str, str], ...]]


def _parsed(text: str | None) -> dict[str, Any]:
    value = json.loads(text) if text is not None else None
    return value or {}


class Snapshot:
    """A package's rows as read: what its packuments show, parsed only when asked.

    ``source`` is every value a packument is rendered from (versions with
    their manifests and tarballs, in publish order, and the dist-tags), so two
    snapshots with equal sources render equal documents.
    """

    def __init__(
        self,
        name: str,
        rows: Sequence[Any],
        tags: dict[str, str],
        process: Callable[[Any], Any] = lambda row: row,
    ) -> None:
        self.name = name
        self.tags = tags
        self._rows = rows  # as the driver returned them: compared on every GET, parsed rarely
        self._process = process
        self.source: Source = (tuple(map(tuple, rows)), tuple(tags.items()))

    def has_version(self, version: str) -> bool:
        return any(row.version == version for row in self._rows)

    @cached_property
    def state(self) -> PackageState:
        state = PackageState(name=self.name, tags=dict(self.tags))
        for row in map(self._process, self._rows):
            tarball = None
            if row.filename is not None:
                meta = _parsed(row.file_meta)
                tarball = Tarball(row.filename, row.blob_digest, row.size, meta)
            manifest, created = _parsed(row.meta), _aware(row.created_at)
            state.versions.append(
                VersionRow(row.version_id, row.version, manifest, created, tarball)
            )
        return state


def snapshot(conn: Connection, repository: str, name: str) -> Snapshot | None:
    """The package's rows; None when it has no version in the repository."""
    rows = _VERSIONS.all(conn, {"repository": repository, "name": name}, processed=False)
    _checked(rows[0] if rows else None, repository)
    if rows[0].version_id is None:
        return None
    tags = _TAGS.all(conn, {"package_id": rows[0].package_id})
    dialect = conn.dialect
    return Snapshot(
        name,
        rows,
        {tag.name: tag.version for tag in tags},
        lambda row: _VERSIONS.processed(dialect, row),
    )


def package(conn: Connection, repository: str, name: str) -> PackageState | None:
    """The package's state; None when it has no version in the repository."""
    found = snapshot(conn, repository, name)
    return found.state if found is not None else None


def tarball(
    conn: Connection, repository: str, name: str, version: str, filename: str
) -> tuple[int, Tarball] | None:
    """The version id and tarball named by a download URL."""
    params = {"repository": repository, "name": name, "version": version, "filename": filename}
    row = _checked(_TARBALL.first(conn, params), repository)
    if row.filename is None:
        return None
    return row.version_id, Tarball(row.filename, row.blob_digest, row.size, row.meta or {})
