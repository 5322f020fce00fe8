"""The read path: prebuilt Core queries, one round trip per request, no ORM objects.

Installers read far more than they write (an index page, a metadata file and a
wheel per package, every time), and each read is also decided and audited, so
these queries resolve the repository (refusing one that is missing or holds
another format) and the rows asked for in a single statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, select

from registry.catalog import checked_repository
from registry.db.models import ArtifactFile, Package, Repository, Version

FORMAT = "pypi"


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


_R, _P, _V, _F = _table(Repository), _table(Package), _table(Version), _table(ArtifactFile)


@dataclass(frozen=True)
class FileRow:
    """One stored file of a project (a distribution or its PEP 658 metadata file)."""

    version_id: int
    version: str
    filename: str
    digest: str
    size: int
    created_at: datetime
    meta: dict[str, Any]

    @property
    def sha256(self) -> str:
        return self.digest.removeprefix("sha256:")

    @property
    def is_metadata_file(self) -> bool:
        return bool(self.meta.get("metadata_of"))


@dataclass(frozen=True)
class Release:
    """One version with its metadata and files (for the JSON API)."""

    version: str
    meta: dict[str, Any]
    files: list[FileRow]


def _checked(row: Any, repository: str) -> Any:
    return checked_repository(row, repository, FORMAT, "Python packages")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_REPOSITORY = select(_R.c.id, _R.c.format).where(_R.c.name == bindparam("repository"))
# What :func:`_file` reads, with the repository's format for :func:`_checked`.
_FILE_COLUMNS = (
    _R.c.format,
    _V.c.id.label("version_id"),
    _V.c.version,
    _F.c.filename,
    _F.c.blob_digest,
    _F.c.size,
    _F.c.created_at,
    _F.c.meta,
)
_PROJECT_FILES = (
    select(*_FILE_COLUMNS)
    .select_from(
        _R.outerjoin(_P, and_(_P.c.repository_id == _R.c.id, _P.c.name == bindparam("name")))
        .outerjoin(_V, _V.c.package_id == _P.c.id)
        .outerjoin(_F, _F.c.version_id == _V.c.id)
    )
    .where(_R.c.name == bindparam("repository"))
)
_PROJECT_NAMES = (
    select(_R.c.format, _P.c.name)
    .select_from(_R.outerjoin(_P, _P.c.repository_id == _R.c.id))
    .where(_R.c.name == bindparam("repository"))
    .order_by(_P.c.name)
)
_RELEASES = (
    select(_R.c.format, _V.c.id, _V.c.version, _V.c.meta)
    .select_from(
        _R.outerjoin(
            _P, and_(_P.c.repository_id == _R.c.id, _P.c.name == bindparam("name"))
        ).outerjoin(_V, _V.c.package_id == _P.c.id)
    )
    .where(_R.c.name == bindparam("repository"))
)
_ONE_FILE = (
    select(*_FILE_COLUMNS)
    .select_from(
        _R.outerjoin(_P, and_(_P.c.repository_id == _R.c.id, _P.c.name == bindparam("name")))
        .outerjoin(_V, and_(_V.c.package_id == _P.c.id, _V.c.version == bindparam("version")))
        .outerjoin(_F, and_(_F.c.version_id == _V.c.id, _F.c.filename == bindparam("filename")))
    )
    .where(_R.c.name == bindparam("repository"))
)


def _file(row: Any) -> FileRow:
    return FileRow(
        version_id=row.version_id,
        version=row.version,
        filename=row.filename,
        digest=row.blob_digest,
        size=row.size,
        created_at=_aware(row.created_at),
        meta=row.meta or {},
    )


def repository_exists(conn: Connection, repository: str) -> None:
    """Refuse a missing repository, or one of another format."""
    _checked(conn.execute(_REPOSITORY, {"repository": repository}).first(), repository)


def project_files(conn: Connection, repository: str, name: str) -> list[FileRow] | None:
    """Every file of a project (normalised name); None when the project does not exist."""
    rows = conn.execute(_PROJECT_FILES, {"repository": repository, "name": name}).all()
    _checked(rows[0] if rows else None, repository)
    if rows[0].version_id is None:
        return None
    return [_file(row) for row in rows if row.filename is not None]


def project_names(conn: Connection, repository: str) -> list[str]:
    rows = conn.execute(_PROJECT_NAMES, {"repository": repository}).all()
    _checked(rows[0] if rows else None, repository)
    return [row.name for row in rows if row.name is not None]


def releases(conn: Connection, repository: str, name: str) -> list[Release] | None:
    """Every release of a project with its files; None when the project does not exist."""
    rows = conn.execute(_RELEASES, {"repository": repository, "name": name}).all()
    _checked(rows[0] if rows else None, repository)
    if rows[0].id is None:
        return None
    files = project_files(conn, repository, name) or []
    by_version: dict[int, list[FileRow]] = {}
    for file in files:
        by_version.setdefault(file.version_id, []).append(file)
    return [Release(row.version, row.meta or {}, by_version.get(row.id, [])) for row in rows]


def one_file(
    conn: Connection, repository: str, name: str, version: str, filename: str
) -> FileRow | None:
    params = {"repository": repository, "name": name, "version": version, "filename": filename}
    row = _checked(conn.execute(_ONE_FILE, params).first(), repository)
    return None if row.filename is None else _file(row)
