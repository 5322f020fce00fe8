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
CHUNK = 500  # ids per IN (...) list


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


_Child = tuple[Table, "Column[Any]", "Column[Any]", list[Any], list[dict[str, Any]]]


def _collect(
    conn: Connection,
    parent: Table,
    rows: Sequence[Mapping[str, Any]],
    depth: int,
    into: list[_Child],
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
        found: list[dict[str, Any]] = []
        for chunk in _chunks(keys, CHUNK):
            found += [
                dict(r) for r in conn.execute(select(child).where(column.in_(chunk))).mappings()
            ]
        if found:
            into.append((child, column, referenced, keys, found))
            _collect(conn, child, found, depth + 1, into)


@dataclass(frozen=True)
class TrashRequest:
    """One version to move into the trash, as the plan named it."""

    version_id: int
    repository: str
    package: str
    version: str
    rule_id: str = ""
    rule_name: str = ""


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
    request = TrashRequest(version_id, *expect, rule_id=rule_id, rule_name=rule_name)
    moved, failures = trash_versions(
        conn, [request], run_id=run_id, now=now, purge_after=purge_after
    )
    if version_id in failures:
        raise Gone(failures[version_id])
    return moved[version_id]


def trash_versions(
    conn: Connection,
    requests: Sequence[TrashRequest],
    *,
    run_id: int | None,
    now: datetime,
    purge_after: datetime,
) -> tuple[dict[int, Trashed], dict[int, str]]:
    """Move many versions into the trash with a few statements per table.

    Returns what moved and, by version id, why the others did not (gone, or
    replaced by a version of the same name since the plan): those are untouched.
    """
    failures: dict[int, str] = {}
    found: dict[int, Mapping[str, Any]] = {}
    ids = [request.version_id for request in requests]
    for chunk in _chunks(ids, CHUNK):
        query = (
            select(
                _VERSIONS,
                _PACKAGES.c.name.label("_package"),
                _REPOSITORIES.c.name.label("_repo"),
                _REPOSITORIES.c.format.label("_format"),
            )
            .join(_PACKAGES, _PACKAGES.c.id == _VERSIONS.c.package_id)
            .join(_REPOSITORIES, _REPOSITORIES.c.id == _PACKAGES.c.repository_id)
            .where(_VERSIONS.c.id.in_(chunk))
        )
        found.update({row["id"]: row for row in conn.execute(query).mappings()})
    alive: list[tuple[TrashRequest, Mapping[str, Any]]] = []
    for request in requests:
        row = found.get(request.version_id)
        expect = (request.repository, request.package, request.version)
        if row is None or (row["_repo"], row["_package"], row["version"]) != expect:
            failures[request.version_id] = (
                f"version {'/'.join(expect)} is gone or was replaced since the plan"
            )
        else:
            alive.append((request, row))
    if not alive:
        return {}, failures
    versions = [{c.name: row[c.name] for c in _VERSIONS.columns} for _request, row in alive]
    package_ids = sorted({v["package_id"] for v in versions})
    packages = {
        row["id"]: row
        for chunk in _chunks(package_ids, CHUNK)
        for row in conn.execute(select(_PACKAGES).where(_PACKAGES.c.id.in_(chunk))).mappings()
    }
    children: list[_Child] = []
    _collect(conn, _VERSIONS, versions, 1, children)
    owned = _by_version(children, [v["id"] for v in versions])

    trash_rows, blob_rows = [], []
    for (request, row), version in zip(alive, versions, strict=True):
        parts = owned[version["id"]]
        size = sum(int(r["size"]) for table, rows in parts if table.name == "files" for r in rows)
        trash_rows.append(
            {
                "repository": request.repository,
                "format": row["_format"],
                "package": request.package,
                "version": request.version,
                "run_id": run_id,
                "rule_id": request.rule_id,
                "rule_name": request.rule_name,
                "size": size,
                "snapshot": {
                    "package": _encode(_PACKAGES, packages[version["package_id"]]),
                    "version": _encode(_VERSIONS, version),
                    "children": [
                        {"table": table.name, "rows": [_encode(table, r) for r in rows]}
                        for table, rows in parts
                    ],
                },
                "deleted_at": now,
                "purge_after": purge_after,
            }
        )
    trash_ids = list(
        conn.execute(
            insert(_TRASH).returning(_TRASH.c.id, sort_by_parameter_order=True), trash_rows
        ).scalars()
    )
    moved: dict[int, Trashed] = {}
    for version, trash_id, trash_row in zip(versions, trash_ids, trash_rows, strict=True):
        digests = {
            r[name]
            for table, rows in owned[version["id"]]
            for name in _blob_columns(table)
            for r in rows
            if r[name]
        }
        blob_rows += [{"trash_id": trash_id, "digest": d} for d in sorted(digests)]
        moved[version["id"]] = Trashed(trash_id=int(trash_id), size=trash_row["size"])
    for chunk in _chunks(blob_rows, CHUNK):
        conn.execute(insert(_TRASH_BLOBS), chunk)
    for table, column, _referenced, keys, _rows in reversed(children):
        for chunk in _chunks(keys, CHUNK):
            conn.execute(delete(table).where(column.in_(chunk)))
    for chunk in _chunks([v["id"] for v in versions], CHUNK):
        conn.execute(delete(_VERSIONS).where(_VERSIONS.c.id.in_(chunk)))
    _drop_empty_packages(conn, package_ids)
    return moved, failures


def _by_version(
    children: list[_Child], version_ids: list[int]
) -> dict[int, list[tuple[Table, list[dict[str, Any]]]]]:
    """Split collected rows by the version each descends from, parent tables first."""
    root: dict[tuple[str, str, Any], int] = {(_VERSIONS.name, "id", v): v for v in version_ids}
    owned: dict[int, dict[str, list[dict[str, Any]]]] = {v: {} for v in version_ids}
    order: dict[int, list[Table]] = {v: [] for v in version_ids}
    for table, column, referenced, _keys, rows in children:
        parent = referenced.table.name
        targets = {c.name for _t, _c, c in _children(table.name)}
        for row in rows:
            version_id = root.get((parent, referenced.name, row[column.name]))
            if version_id is None:
                continue
            if table.name not in owned[version_id]:
                owned[version_id][table.name] = []
                order[version_id].append(table)
            owned[version_id][table.name].append(row)
            for name in targets:
                root[(table.name, name, row[name])] = version_id
    return {v: [(t, owned[v][t.name]) for t in order[v]] for v in version_ids}


def _drop_empty_packages(conn: Connection, package_ids: list[int]) -> None:
    """Delete packages nothing references any more (as the formats' own deletes do)."""
    empty = set(package_ids)
    for _child, column, _referenced in _children(_PACKAGES.name):
        for chunk in _chunks(sorted(empty), CHUNK):
            empty -= set(conn.execute(select(column).where(column.in_(chunk)).distinct()).scalars())
    for chunk in _chunks(sorted(empty), CHUNK):
        conn.execute(delete(_PACKAGES).where(_PACKAGES.c.id.in_(chunk)))


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


def purge_many(conn: Connection, trash_ids: Sequence[int]) -> dict[int, int]:
    """Forget many trashed versions; returns the size of each one purged (absent: gone)."""
    found = {
        row.id: row
        for chunk in _chunks(list(trash_ids), CHUNK)
        for row in conn.execute(
            select(_TRASH.c.id, _TRASH.c.repository, _TRASH.c.package, _TRASH.c.format,
                   _TRASH.c.size).where(_TRASH.c.id.in_(chunk))
        )
    }  # fmt: skip
    ids = sorted(found)
    for chunk in _chunks(ids, CHUNK):
        conn.execute(delete(_TRASH_BLOBS).where(_TRASH_BLOBS.c.trash_id.in_(chunk)))
        conn.execute(delete(_TRASH).where(_TRASH.c.id.in_(chunk)))
    for repository, image in sorted(
        {(r.repository, r.package) for r in found.values() if r.format == "oci"}
    ):
        unlink_unused(conn, repository, image)
    return {trash_id: int(row.size) for trash_id, row in found.items()}


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
