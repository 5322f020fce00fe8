"""Verify the whole audit log in the database; raise on the first problem.

The procedure (each step a function that raises with context):

1. Open every checkpoint: its signature must be by the given key, its body a
   C2SP checkpoint for the expected origin, its row columns equal to the note.
2. Stream the events in seq order from seq 1: each seq follows the previous,
   each ``prev_hash`` is the previous ``hash`` (genesis: 64 zeros), each
   ``hash`` recomputes from the row, and times never decrease.
3. Rebuild the Merkle tree from the event hashes as they stream. At each
   checkpoint's size, its signed root must equal the recomputed root, and an
   RFC 9162 consistency proof (built from the recomputed subtrees, not from
   the database's node cache) must verify from the previous checkpoint.
4. The chain head row must agree with the last event, and no signed
   checkpoint may claim more events than the log holds.

The first failure raises :class:`AuditVerificationError` (a subclass naming
the kind) with ``seq`` set to the first bad seq: an edited event fails its own
hash; a deleted one is the seq that is missing; an inserted or reordered one
breaks the ``prev_hash`` link at the first displaced seq. A suffix rewritten
and re-sealed consistently is caught by the first checkpoint covering it;
``seq`` is then the first event after the previous checkpoint.

Hashing uses the stored canonical text directly (see :mod:`audit.canonical`).
``deep=True`` additionally parses every JSON column, which proves each column
is the value the hash covers (not only that the concatenation is) at about a
third of the speed.
"""

from __future__ import annotations

import hashlib
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from audit._rows import EVENT_COLUMNS, STREAM_BATCH, event_from_row, line_from_row
from audit.canonical import quote
from audit.chain import Head, read_head
from audit.checkpoint import Checkpoint, CheckpointBody, list_checkpoints
from audit.errors import (
    AuditVerificationError,
    ChainError,
    CheckpointMismatchError,
    CorruptEventError,
    EventNotFoundError,
    ProofError,
)
from audit.events import GENESIS_HASH
from audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    decompose,
    node_hash,
    verify_consistency,
)
from audit.note import NoteVerifier
from audit.schema import audit_events


@dataclass(frozen=True)
class VerificationReport:
    """What was verified. Only ever returned when everything held."""

    events: int
    checkpoints: int
    last_hash: str
    root_hash: str
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


class SparseSubtrees:
    """A :class:`audit.merkle.SubtreeSource` over a few known subtree hashes."""

    def __init__(self, nodes: dict[tuple[int, int], bytes]) -> None:
        self._nodes = nodes

    def perfect(self, level: int, index: int) -> bytes:
        try:
            return self._nodes[(level, index)]
        except KeyError:
            raise EventNotFoundError(f"subtree ({level}, {index}) is not at hand") from None


class _Frontier:
    """Maximal aligned subtrees of the leaves ``[start, end)`` seen so far."""

    __slots__ = ("end", "hashes", "indexes", "levels", "start")

    def __init__(self, start: int) -> None:
        self.start = self.end = start
        self.levels: list[int] = []
        self.indexes: list[int] = []
        self.hashes: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        level, index, node = 0, self.end, leaf
        self.end += 1
        levels, indexes, hashes = self.levels, self.indexes, self.hashes
        while levels and levels[-1] == level and index & 1 and indexes[-1] == index - 1:
            levels.pop()
            indexes.pop()
            node = node_hash(hashes.pop(), node)
            level, index = level + 1, index >> 1
        levels.append(level)
        indexes.append(index)
        hashes.append(node)

    def nodes(self) -> list[tuple[int, int, bytes]]:
        return list(zip(self.levels, self.indexes, self.hashes, strict=True))


class _TreeCheck:
    """Step 3: recompute roots at checkpoint sizes and check consistency."""

    def __init__(self, checkpoints: Sequence[tuple[Checkpoint, CheckpointBody]]) -> None:
        self._pending = list(checkpoints)
        self._previous: tuple[int, bytes, list[tuple[int, int, bytes]]] = (0, EMPTY_ROOT, [])
        self.frontier = _Frontier(0)
        self.next_size = self._pending[0][1].tree_size if self._pending else -1
        if self.next_size == 0:
            self.reached(0)

    def reached(self, size: int) -> None:
        """Called when ``size`` leaves are in; checks every checkpoint of that size."""
        while self._pending and self._pending[0][1].tree_size == size:
            _, body = self._pending.pop(0)
            self._check(body)
        self.next_size = self._pending[0][1].tree_size if self._pending else -1

    def _check(self, body: CheckpointBody) -> None:
        old_size, old_root, old_nodes = self._previous
        new_nodes = old_nodes + self.frontier.nodes()
        merged = CompactRange(old_size, [h for _, _, h in old_nodes])
        for level, _, node in self.frontier.nodes():
            merged.push(level, node)
        if merged.root() != body.root_hash:
            raise CheckpointMismatchError(
                f"events {old_size + 1}..{body.tree_size} do not produce the root signed in "
                f"checkpoint {body.tree_size}: they were rewritten after it was signed",
                seq=old_size + 1,
            )
        source = SparseSubtrees({(lv, ix): h for lv, ix, h in new_nodes})
        proof = consistency_proof(source, old_size, body.tree_size)
        try:
            verify_consistency(old_size, body.tree_size, old_root, body.root_hash, proof)
        except ProofError as exc:
            raise ProofError(
                f"checkpoint {body.tree_size} is not consistent with checkpoint {old_size}: {exc}",
                seq=old_size + 1,
            ) from exc
        compact = [(lv, ix, merged_hash) for (lv, ix), merged_hash in _compact(merged, body)]
        self._previous = (body.tree_size, body.root_hash, compact)
        self.frontier = _Frontier(body.tree_size)

    def finish(self, count: int) -> bytes:
        if self._pending:
            size = self._pending[0][1].tree_size
            raise ChainError(
                f"checkpoint {size} was signed but the log holds only {count} events: "
                f"events from seq {count + 1} were deleted",
                seq=count + 1,
            )
        old_size, _, old_nodes = self._previous
        merged = CompactRange(old_size, [h for _, _, h in old_nodes])
        for level, _, node in self.frontier.nodes():
            merged.push(level, node)
        return merged.root()


def _compact(merged: CompactRange, body: CheckpointBody) -> list[tuple[tuple[int, int], bytes]]:
    shape = decompose(0, body.tree_size)
    hashes = merged.nodes()
    return list(zip(shape, hashes, strict=True))


def _open_checkpoints(
    conn: Connection, verifier: NoteVerifier, origin: str | None
) -> list[tuple[Checkpoint, CheckpointBody]]:
    """Step 1."""
    opened = []
    for checkpoint in list_checkpoints(conn):
        try:
            opened.append((checkpoint, checkpoint.open(verifier, origin=origin)))
        except AuditVerificationError as exc:
            raise type(exc)(f"checkpoint {checkpoint.tree_size}: {exc}", seq=exc.seq) from exc
    return opened


def _check_deep(row: Any) -> None:
    try:
        event = event_from_row(row)
    except CorruptEventError as exc:
        raise ChainError(str(exc), seq=exc.seq) from exc
    if event.to_json() != line_from_row(row):
        raise ChainError(
            f"event seq {event.seq}: a stored column is not canonical JSON", seq=event.seq
        )


def _stream(conn: Connection, tree: _TreeCheck, *, deep: bool) -> tuple[int, str]:
    """Steps 2 and 3. Returns (event count, last hash)."""
    query = (
        select(*EVENT_COLUMNS)
        .order_by(audit_events.c.seq)
        .execution_options(yield_per=STREAM_BATCH)
    )
    expected, prev, last_time = 1, GENESIS_HASH, ""
    sha256, fromhex, leaf_prefix = hashlib.sha256, bytes.fromhex, b"\x00"
    next_size = tree.next_size
    frontier_append = tree.frontier.append
    for row in conn.execute(query):
        seq, time, actor, action, resource, decision, outcome, details, prev_hash, stored = row
        if seq != expected:
            raise ChainError(f"event seq {expected} is missing (next is {seq})", seq=expected)
        if prev_hash != prev:
            raise ChainError(
                f"event seq {seq}: prev_hash does not match the hash of seq {seq - 1}; "
                "an event was inserted, removed or reordered before it",
                seq=seq,
            )
        body = "".join(
            (
                '{"action":', quote(action), ',"actor":', actor, ',"decision":', decision,
                ',"details":', details, ',"outcome":', quote(outcome), ',"prev_hash":',
                quote(prev_hash), ',"resource":', resource, ',"seq":', str(seq),
                ',"time":', quote(time), "}",
            )
        )  # fmt: skip
        try:
            digest = sha256(body.encode()).hexdigest()
        except UnicodeEncodeError:
            digest = ""
        if digest != stored:
            raise ChainError(f"event seq {seq}: stored hash does not match its content", seq=seq)
        if time < last_time:
            raise ChainError(f"event seq {seq}: time goes backwards", seq=seq)
        if deep:
            _check_deep(row)
        frontier_append(sha256(leaf_prefix + fromhex(stored)).digest())
        if seq == next_size:
            tree.reached(seq)
            next_size, frontier_append = tree.next_size, tree.frontier.append
        prev, last_time, expected = stored, time, seq + 1
    return expected - 1, prev


def _check_head(conn: Connection, count: int, last_hash: str) -> None:
    """Step 4: the head row agrees; a longer head must be a concurrent append."""
    head: Head = read_head(conn, lock=False)
    if head.seq < count:
        raise ChainError(
            f"events after seq {head.seq} were written around the audit writer",
            seq=head.seq + 1,
        )
    if head.seq == count and head.hash != last_hash:
        raise ChainError(f"audit_head disagrees with event seq {count}", seq=count)
    if head.seq > count:
        following = conn.execute(
            select(audit_events.c.prev_hash).where(audit_events.c.seq == count + 1)
        ).scalar()
        if following != last_hash:
            raise ChainError(
                f"audit_head records {head.seq} events but the log ends at seq {count}: "
                f"events from seq {count + 1} were deleted",
                seq=count + 1,
            )


def verify_log(
    conn: Connection,
    verifier: NoteVerifier | str,
    *,
    origin: str | None = None,
    deep: bool = False,
) -> VerificationReport:
    """Verify chain, tree and checkpoints; raise :class:`AuditVerificationError`.

    ``verifier`` is the log's verifier key (object or text). Run it in a
    read transaction (on SQLite, ``sqlite_begin="DEFERRED"`` avoids holding the
    write lock); events appended concurrently after the scan are not checked.
    """
    key = NoteVerifier.from_text(verifier) if isinstance(verifier, str) else verifier
    started = _time.perf_counter()
    checkpoints = _open_checkpoints(conn, key, origin)
    tree = _TreeCheck(checkpoints)
    count, last_hash = _stream(conn, tree, deep=deep)
    root = tree.finish(count)
    _check_head(conn, count, last_hash)
    return VerificationReport(
        events=count,
        checkpoints=len(checkpoints),
        last_hash=last_hash,
        root_hash=root.hex(),
        seconds=_time.perf_counter() - started,
    )
