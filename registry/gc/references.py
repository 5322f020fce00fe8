"""Who references a blob: every column with a foreign key to ``blobs.digest``.

Found on the shared metadata rather than listed by hand, so a table another
format adds (PyPI files, npm tarballs, the retention trash) protects its blobs
from the collector the moment it declares its foreign key. The mark leaves out
OCI blob links (:mod:`registry.gc.links` says which of them are live); the
re-check at delete time counts every row, so a link is swept before its blob.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from functools import cache

from sqlalchemy import Column, Connection, select
from sqlmodel import SQLModel

import registry.db.models  # noqa: F401  (registers every table on the metadata)

BLOBS = "blobs"
BATCH = 500


@cache
def columns() -> tuple[Column[str], ...]:
    """Every column that references ``blobs.digest``, in a stable order."""
    found: list[Column[str]] = []
    for table in SQLModel.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name == BLOBS and fk.column.name == "digest":
                found.append(fk.parent)
    return tuple(sorted(found, key=lambda c: (c.table.name, c.name)))


def referenced(conn: Connection, without: Collection[Column[str]] = ()) -> set[str]:
    """The mark phase: every digest something references right now (but through ``without``)."""
    marked: set[str] = set()
    for column in columns():
        if any(column is left_out for left_out in without):  # (== builds SQL)
            continue
        marked.update(d for d in conn.execute(select(column).distinct()).scalars() if d)
    return marked


def still_referenced(conn: Connection, digests: Iterable[str]) -> set[str]:
    """Which of ``digests`` are referenced now (the re-check at delete time)."""
    wanted = list(digests)
    found: set[str] = set()
    for chunk in _chunks(wanted):
        for column in columns():
            found.update(conn.execute(select(column).where(column.in_(chunk)).distinct()).scalars())
    return found


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]
