"""The Merkle tree of the audit log as stored in the database.

:class:`DatabaseSubtrees` serves perfect-subtree hashes to the pure proof
algorithms in :mod:`audit.merkle`. Subtrees of height 8, 16, 24, ... are read
from the ``audit_tree_nodes`` cache (tiles of 256, as Tessera and other tiled
logs do); anything else is folded from at most 256 nodes of the cached level
below it, or from at most 128 event hashes. A proof therefore costs a few
hundred hash operations and small indexed reads, for any log size.

:func:`extend_node_cache` fills the cache up to a tree size; checkpoint
creation calls it, so proofs up to the latest checkpoint are always cheap.
The cache is derived data: verification never trusts it, and a wrong cached
node can only produce a proof that fails to verify against a signed root.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Insert, Table, func, select

from audit.errors import ChainError, EventNotFoundError
from audit.merkle import event_leaf, fold_perfect
from audit.schema import audit_events, audit_tree_nodes

TILE_HEIGHT = 8
_CHUNK_TILES = 64  # tiles built per read: 16,384 leaves, ~1 MB


def insert_ignoring_duplicates(conn: Connection, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the connection's dialect.

    Checkpoint creation may run on two instances at once (a scheduled job and
    an on-demand request); both compute identical rows, and the second insert
    must neither fail nor abort the caller's PostgreSQL transaction.
    """
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


def read_leaves(conn: Connection, first: int, count: int) -> list[bytes]:
    """Leaf hashes for leaf indexes ``[first, first + count)`` (seq first+1 ...)."""
    rows = conn.execute(
        select(audit_events.c.seq, audit_events.c.hash)
        .where(audit_events.c.seq > first, audit_events.c.seq <= first + count)
        .order_by(audit_events.c.seq)
    ).all()
    return _contiguous_leaves(rows, first, count)


def _contiguous_leaves(rows: Any, first: int, count: int) -> list[bytes]:
    leaves: list[bytes] = []
    expected = first + 1
    for seq, digest in rows:
        if seq != expected:
            raise ChainError(f"event seq {expected} is missing from the log", seq=expected)
        leaves.append(event_leaf(digest))
        expected += 1
    if len(leaves) != count:
        raise EventNotFoundError(f"the log holds no event with seq {expected}")
    return leaves


class DatabaseSubtrees:
    """A :class:`audit.merkle.SubtreeSource` reading events and the node cache."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def perfect(self, level: int, index: int) -> bytes:
        if level == 0:
            return read_leaves(self._conn, index, 1)[0]
        if level % TILE_HEIGHT == 0:
            cached = self._cached(level, index, 1)
            if index in cached:
                return cached[index]
        base = (level - 1) // TILE_HEIGHT * TILE_HEIGHT
        shift = level - base
        return fold_perfect(self._nodes(base, index << shift, 1 << shift))

    def _nodes(self, level: int, first: int, count: int) -> list[bytes]:
        if level == 0:
            return read_leaves(self._conn, first, count)
        cached = self._cached(level, first, count)
        return [cached.get(i) or self.perfect(level, i) for i in range(first, first + count)]

    def _cached(self, level: int, first: int, count: int) -> dict[int, bytes]:
        rows = self._conn.execute(
            select(audit_tree_nodes.c.idx, audit_tree_nodes.c.hash).where(
                audit_tree_nodes.c.level == level,
                audit_tree_nodes.c.idx >= first,
                audit_tree_nodes.c.idx < first + count,
            )
        )
        return {int(idx): bytes(digest) for idx, digest in rows}


def _cached_count(conn: Connection, level: int) -> int:
    top = conn.execute(
        select(func.max(audit_tree_nodes.c.idx)).where(audit_tree_nodes.c.level == level)
    ).scalar()
    return 0 if top is None else int(top) + 1


def _read_cached_run(conn: Connection, level: int, first: int, count: int) -> list[bytes]:
    rows = conn.execute(
        select(audit_tree_nodes.c.idx, audit_tree_nodes.c.hash)
        .where(
            audit_tree_nodes.c.level == level,
            audit_tree_nodes.c.idx >= first,
            audit_tree_nodes.c.idx < first + count,
        )
        .order_by(audit_tree_nodes.c.idx)
    ).all()
    if len(rows) != count or (rows and int(rows[-1][0]) != first + count - 1):
        raise EventNotFoundError(f"tree node cache lacks level {level} nodes from {first}")
    return [bytes(digest) for _, digest in rows]


def _extend_level(conn: Connection, level: int, size: int) -> None:
    have, want = _cached_count(conn, level), size >> level
    statement = insert_ignoring_duplicates(conn, audit_tree_nodes)
    below = level - TILE_HEIGHT
    for chunk in range(have, want, _CHUNK_TILES):
        tiles = min(_CHUNK_TILES, want - chunk)
        first, count = chunk << TILE_HEIGHT, tiles << TILE_HEIGHT
        if below == 0:
            nodes = read_leaves(conn, first, count)
        else:
            nodes = _read_cached_run(conn, below, first, count)
        rows = [
            {
                "level": level,
                "idx": chunk + t,
                "hash": fold_perfect(nodes[t << TILE_HEIGHT : (t + 1) << TILE_HEIGHT]),
            }
            for t in range(tiles)
        ]
        conn.execute(statement, rows)


def extend_node_cache(conn: Connection, size: int) -> None:
    """Cache every complete 256-wide tile at every cached level below ``size``.

    Cost is proportional to the leaves added since the last call.
    """
    level = TILE_HEIGHT
    while size >> level:
        _extend_level(conn, level, size)
        level += TILE_HEIGHT
