"""Soft delete: a version's rows move into the trash, to be restored or, later, purged.

Readers of every format only ever see live rows, so a version in the trash is
invisible to all of them without any of them knowing about retention: the
rows a version is made of (the version itself and every row that references
it through a foreign key, found on the shared metadata: files, tags, labels,
OCI manifests, and whatever tables other formats add) are copied into one
``retention_trash`` row as JSON and deleted. The blobs those rows reference
are recorded in ``retention_trash_blobs`` (a foreign key to ``blobs``), so
the garbage collector keeps them until the purge.

``restore`` inserts the rows again (with fresh ids, foreign keys remapped);
``purge`` forgets the snapshot, after which the blobs are garbage unless
something else references them. For OCI images the purge also unlinks blobs
that no live or trashed manifest of the image needs any more, because OCI
keeps a manifest's blobs linked to its image after the manifest is deleted.

All functions run inside the caller's transaction (the ``apply`` of a
governed action) and never commit on their own.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Insert,
    LargeBinary,
    Table,
    delete,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from registry.db.models import Blob, Package, Repository, Tag, Version
from registry.db.oci_models import LINKED, OciBlobLink
from registry.errors import Conflict, NotFound
from registry.retention.models import RetentionTrash, RetentionTrashBlob

MAX_DEPTH = 3  # rows referencing rows referencing the version, and one level more


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


_VERSIONS, _PACKAGES, _REPOSITORIES = _table(Version), _table(Package), _table(Repository)
_TAGS, _BLOBS, _LINKS = _table(Tag), _table(Blob), _table(OciBlobLink)
_TRASH, _TRASH_BLOBS = _table(RetentionTrash), _table(RetentionTrashBlob)


class Gone(NotFound):
    """The version changed or vanished between the plan and its turn."""


@dataclass(frozen=True)
class Trashed:
    trash_id: int
    size: int


@dataclass
class Restored:
    repository: str
    package: str
    version: str
    skipped: list[str] = field(default_factory=list)  # rows that could not come back, and why


@cache
def _children(table_name: str) -> tuple[tuple[Table, Column[Any], Column[Any]], ...]:
    """(table, its column, the referenced column) for every foreign key into ``table_name``."""
    found = []
    for table in SQLModel.metadata.sorted_tables:
        if table.name.startswith("retention_"):
            continue
        for fk in table.foreign_keys:
            if fk.column.table.name == table_name:
                found.append((table, fk.parent, fk.column))
    return tuple(found)


def _blob_columns(table: Table) -> list[str]:
    return [fk.parent.name for fk in table.foreign_keys if fk.column.table.name == _BLOBS.name]


def _autoincrement_id(table: Table) -> bool:
    keys = list(table.primary_key.columns)
    return len(keys) == 1 and keys[0].name == "id" and keys[0].type.python_type is int


def _encode(table: Table, row: Mapping[Any, Any]) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    for column in table.columns:
        value = row[column.name]
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bytes | memoryview):
            value = {"$base64": base64.b64encode(bytes(value)).decode()}
        encoded[column.name] = value
    return encoded


def _decode(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for column in table.columns:
        if column.name not in row:
            continue
        value = row[column.name]
        if isinstance(value, str) and _is_datetime(column):
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:  # stored as UTC without an offset
                value = value.replace(tzinfo=UTC)
        elif isinstance(column.type, LargeBinary) and isinstance(value, dict):
            value = base64.b64decode(value["$base64"])
        decoded[column.name] = value
    return decoded


def _is_datetime(column: Column[Any]) -> bool:
    """DateTime columns, also behind a TypeDecorator (SQLModel's UTCDateTime)."""
    kind = column.type
    return isinstance(getattr(kind, "impl", kind), DateTime)


def _collect(
    conn: Connection,
    parent: Table,
    rows: Sequence[Mapping[str, Any]],
    depth: int,
    into: list[tuple[Table, Column[Any], list[Any], list[dict[str, Any]]]],
) -> None:
    """Rows referencing ``rows``, depth first; ``into`` ends up parent-first."""
    if depth > MAX_DEPTH or not rows:
        return
    for child, column, referenced in _children(parent.name):
        if child.name in (_VERSIONS.name, _PACKAGES.name, _REPOSITORIES.name):
            continue  # the version's own package and repository stay
        keys = sorted({row[referenced.name] for row in rows if row[referenced.name] is not None})
        if not keys:
            continue
        found = [dict(r) for r in conn.execute(select(child).where(column.in_(keys))).mappings()]
        if found:
            into.append((child, column, keys, found))
            _collect(conn, child, found, depth + 1, into)


def trash_version(
    conn: Connection,
    version_id: int,
    *,
    expect: tuple[str, str, str],
    rule_id: str,
    rule_name: str,
    run_id: int | None,
    now: datetime,
    purge_after: datetime,
) -> Trashed:
    """Move one version into the trash; :class:`Gone` if it is not ``expect`` any more."""
    found = (
        conn.execute(
            select(
                _VERSIONS,
                _PACKAGES.c.name.label("_package"),
                _REPOSITORIES.c.name.label("_repo"),
                _REPOSITORIES.c.format.label("_format"),
            )
            .join(_PACKAGES, _PACKAGES.c.id == _VERSIONS.c.package_id)
            .join(_REPOSITORIES, _REPOSITORIES.c.id == _PACKAGES.c.repository_id)
            .where(_VERSIONS.c.id == version_id)
        )
        .mappings()
        .first()
    )
    repository, package_name, version_name = expect
    if found is None or (found["_repo"], found["_package"], found["version"]) != expect:
        raise Gone(f"version {repository}/{package_name}/{version_name} is gone or was replaced")
    version_row = {c.name: found[c.name] for c in _VERSIONS.columns}
    package_row = (
        conn.execute(select(_PACKAGES).where(_PACKAGES.c.id == version_row["package_id"]))
        .mappings()
        .one()
    )
    children: list[tuple[Table, Column[Any], list[Any], list[dict[str, Any]]]] = []
    _collect(conn, _VERSIONS, [version_row], 1, children)
    digests: set[str] = set()
    size = 0
    for table, _column, _keys, rows in children:
        for name in _blob_columns(table):
            digests.update(row[name] for row in rows if row[name])
        if table.name == "files":
            size += sum(int(row["size"]) for row in rows)
    snapshot = {
        "package": _encode(_PACKAGES, package_row),
        "version": _encode(_VERSIONS, version_row),
        "children": [
            {"table": table.name, "rows": [_encode(table, row) for row in rows]}
            for table, _column, _keys, rows in children
        ],
    }
    trash_id = _new_id(
        conn,
        insert(_TRASH).values(
            repository=repository,
            format=found["_format"],
            package=package_name,
            version=version_name,
            run_id=run_id,
            rule_id=rule_id,
            rule_name=rule_name,
            size=size,
            snapshot=snapshot,
            deleted_at=now,
            purge_after=purge_after,
        ),
    )
    if digests:
        conn.execute(
            insert(_TRASH_BLOBS), [{"trash_id": trash_id, "digest": d} for d in sorted(digests)]
        )
    for table, column, keys, _rows in reversed(children):
        conn.execute(delete(table).where(column.in_(keys)))
    conn.execute(delete(_VERSIONS).where(_VERSIONS.c.id == version_id))
    _drop_empty_package(conn, version_row["package_id"])
    return Trashed(trash_id=int(trash_id), size=size)


def _drop_empty_package(conn: Connection, package_id: int) -> None:
    """Delete the package once nothing references it (as the formats' own deletes do)."""
    for _child, column, _referenced in _children(_PACKAGES.name):
        if conn.execute(select(column).where(column == package_id).limit(1)).first():
            return
    conn.execute(delete(_PACKAGES).where(_PACKAGES.c.id == package_id))


def latest_trash(conn: Connection, repository: str, package: str, version: str) -> Any:
    """The most recent trash row for an artifact, or None."""
    return conn.execute(
        select(_TRASH)
        .where(
            _TRASH.c.repository == repository,
            _TRASH.c.package == package,
            _TRASH.c.version == version,
        )
        .order_by(_TRASH.c.id.desc())
        .limit(1)
    ).first()


def restore(conn: Connection, trash_id: int) -> Restored:
    """Put a trashed version back; Conflict when its name is taken again."""
    trash = conn.execute(select(_TRASH).where(_TRASH.c.id == trash_id)).first()
    if trash is None:
        raise NotFound(f"nothing in the trash with id {trash_id}; it may have been purged")
    restored = Restored(trash.repository, trash.package, trash.version)
    repo_id = conn.execute(
        select(_REPOSITORIES.c.id).where(_REPOSITORIES.c.name == trash.repository)
    ).scalar()
    if repo_id is None:
        raise Conflict(f"repository {trash.repository!r} no longer exists; create it first")
    snapshot = trash.snapshot
    package = _decode(_PACKAGES, snapshot["package"])
    ids: dict[tuple[str, Any], Any] = {(_REPOSITORIES.name, package["repository_id"]): repo_id}
    package_id = conn.execute(
        select(_PACKAGES.c.id).where(
            _PACKAGES.c.repository_id == repo_id, _PACKAGES.c.name == trash.package
        )
    ).scalar()
    if package_id is None:
        values = {k: v for k, v in package.items() if k != "id"} | {"repository_id": repo_id}
        package_id = _new_id(conn, insert(_PACKAGES).values(values))
    ids[(_PACKAGES.name, package["id"])] = package_id
    version = _decode(_VERSIONS, snapshot["version"])
    taken = conn.execute(
        select(_VERSIONS.c.id).where(
            _VERSIONS.c.package_id == package_id, _VERSIONS.c.version == trash.version
        )
    ).first()
    if taken is not None:
        raise Conflict(
            f"{trash.repository}/{trash.package}/{trash.version} exists again (pushed after "
            "the deletion); delete that version first or leave the trashed one to be purged"
        )
    values = {k: v for k, v in version.items() if k != "id"} | {"package_id": package_id}
    ids[(_VERSIONS.name, version["id"])] = _new_id(conn, insert(_VERSIONS).values(values))
    for entry in snapshot["children"]:
        table = SQLModel.metadata.tables[entry["table"]]
        for row in entry["rows"]:
            _reinsert(conn, table, _decode(table, row), ids, restored)
    conn.execute(delete(_TRASH_BLOBS).where(_TRASH_BLOBS.c.trash_id == trash_id))
    conn.execute(delete(_TRASH).where(_TRASH.c.id == trash_id))
    return restored


def _reinsert(
    conn: Connection,
    table: Table,
    values: dict[str, Any],
    ids: dict[tuple[str, Any], Any],
    restored: Restored,
) -> None:
    for fk in table.foreign_keys:
        key = (fk.column.table.name, values.get(fk.parent.name))
        if key in ids:
            values[fk.parent.name] = ids[key]
    old_id = values.pop("id", None) if _autoincrement_id(table) else None
    try:
        with conn.begin_nested():
            new_id = _new_id(conn, insert(table).values(values))
    except IntegrityError:
        if table.name != _TAGS.name:
            raise Conflict(
                f"cannot restore a row of {table.name}: it conflicts with what the registry "
                "holds now"
            ) from None
        restored.skipped.append(f"tag {values.get('name')} now points elsewhere; not restored")
        return
    if old_id is not None:
        ids[(table.name, old_id)] = new_id


def purge(conn: Connection, trash_id: int) -> int:
    """Forget a trashed version for good; returns its size. Its blobs become garbage."""
    trash = conn.execute(select(_TRASH).where(_TRASH.c.id == trash_id)).first()
    if trash is None:
        raise Gone(f"trash entry {trash_id} was restored or purged already")
    conn.execute(delete(_TRASH_BLOBS).where(_TRASH_BLOBS.c.trash_id == trash_id))
    conn.execute(delete(_TRASH).where(_TRASH.c.id == trash_id))
    if trash.format == "oci":
        unlink_unused(conn, trash.repository, trash.package)
    return int(trash.size)


def unlink_unused(conn: Connection, repository: str, image: str) -> int:
    """Remove an image's linked blobs that no live or trashed manifest references."""
    repo_id = conn.execute(
        select(_REPOSITORIES.c.id).where(_REPOSITORIES.c.name == repository)
    ).scalar()
    if repo_id is None:
        return 0
    files = _table_named("files")
    live = set(
        conn.execute(
            select(files.c.filename, files.c.blob_digest)
            .join(_VERSIONS, _VERSIONS.c.id == files.c.version_id)
            .join(_PACKAGES, _PACKAGES.c.id == _VERSIONS.c.package_id)
            .where(_PACKAGES.c.repository_id == repo_id, _PACKAGES.c.name == image)
        ).all()
    )
    needed = {name for name, _digest in live}
    trashed = set(
        conn.execute(
            select(_TRASH_BLOBS.c.digest)
            .join(_TRASH, _TRASH.c.id == _TRASH_BLOBS.c.trash_id)
            .where(_TRASH.c.repository == repository)
        ).scalars()
    )
    links = conn.execute(
        select(_LINKS.c.id, _LINKS.c.digest, _LINKS.c.storage_digest).where(
            _LINKS.c.repository_id == repo_id, _LINKS.c.image == image, _LINKS.c.state == LINKED
        )
    ).all()
    unused = [
        link.id
        for link in links
        if link.digest not in needed and link.storage_digest not in trashed
    ]
    for chunk in _chunks(unused, 500):
        conn.execute(delete(_LINKS).where(_LINKS.c.id.in_(chunk)))
    return len(unused)


def _new_id(conn: Connection, statement: Insert) -> Any:
    """The primary key of the row ``statement`` inserted."""
    key = conn.execute(statement).inserted_primary_key
    assert key is not None
    return key[0]


def _table_named(name: str) -> Table:
    return SQLModel.metadata.tables[name]


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
