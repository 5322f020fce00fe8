"""Verify the whole audit log in the database; raise on the first problem.

The procedure (each step a function that raises with context):

1. Open every checkpoint: its signature must be by the given key, its body a
   C2SP checkpoint for the expected origin, its row columns equal to the note.
2. Stream the events in seq order from seq 1 up to the head read at the start:
   each seq follows the previous, each ``prev_hash`` is the previous ``hash``
   (genesis: 64 zeros), each ``hash`` recomputes from the row, and times never
   decrease.
3. Rebuild the Merkle tree from the event hashes as they stream. At each
   checkpoint's size, its signed root must equal the recomputed root, and an
   RFC 9162 consistency proof built from the recomputed subtrees (not from the
   database's node cache) must verify from the previous checkpoint.
4. The chain head row must agree with the last event; events past it must be
   concurrent appends that link to it; no checkpoint may claim more events
   than the log holds.

The first failure raises :class:`AuditVerificationError` (a subclass naming
the kind) with ``seq`` set to the first bad seq: an edited event fails its own
hash; a deleted one is the seq that is missing; an inserted or reordered one
breaks the ``prev_hash`` link at the first displaced seq. A suffix rewritten
and re-sealed consistently is caught by the first checkpoint covering it;
``seq`` is then the first event after the previous checkpoint.

Hashing uses the stored canonical text directly (see :mod:`audit.canonical`),
so a matching hash proves the *concatenation* of the JSON columns is intact.
To also prove each column holds the value the hash covers (that nobody moved
bytes from one column into the next): any such move leaves some JSON column
containing the separator that follows a JSON field at the top level
(``,"decision":``, ``,"details":``, ``,"outcome":`` or ``,"seq":``). Rows where
a column contains one (rare: it takes a nested key of that name) have every
JSON column parsed; a column that is not a single JSON value fails.
``deep=True`` parses every row and also requires canonical form (what an
export needs in order to verify), at a fraction of the speed.

:func:`verify_log` runs on one connection. :func:`verify_database` cuts the
log into short seq ranges that worker processes and the calling one take in
turn (each streaming its ranges on its own connection), and joins their chains
and subtrees in seq order, for logs of millions of events on machines with
several cores.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import multiprocessing
import os
import queue
import re
import sys
import time as _time
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import Connection, create_engine, select

from audit._rows import STREAM_BATCH, event_from_row, line_from_row
from audit._sql import scan_events
from audit.chain import read_head
from audit.checkpoint import CheckpointBody, list_checkpoints
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
    CompactRange,
    consistency_proof,
    decompose,
    leaf_hashes,
    node_hash,
    perfect_subtrees,
    verify_consistency,
)
from audit.note import NoteVerifier
from audit.schema import audit_events

#: Below this many events, verify_database does not start processes.
PARALLEL_THRESHOLD = 200_000
#: Seq ranges per process when verify_database splits the log.
RANGES_PER_WORKER = 16
_POLL_SECONDS = 0.5
_JOIN_SECONDS = 10.0

#: Events whose leaves the scan hashes together, level by level (a power of two).
FOLD = 1 << 12

Node = tuple[int, int, bytes]  # (level, index, hash) of a perfect subtree


@dataclass(frozen=True)
class VerificationReport:
    """What was verified. Only ever returned when everything held."""

    events: int
    checkpoints: int
    last_hash: str
    root_hash: str
    seconds: float
    workers: int = 1

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


class SparseSubtrees:
    """A :class:`audit.merkle.SubtreeSource` over known subtrees; a missing one is
    composed from its two halves."""

    def __init__(self, nodes: dict[tuple[int, int], bytes]) -> None:
        self._nodes = nodes

    def perfect(self, level: int, index: int) -> bytes:
        found = self._nodes.get((level, index))
        if found is not None:
            return found
        if level == 0:
            raise EventNotFoundError(f"leaf {index} is not at hand")
        return node_hash(self.perfect(level - 1, 2 * index), self.perfect(level - 1, 2 * index + 1))


# -- step 2 and the leaves of step 3: one contiguous seq range -----------------


@dataclass
class RangeResult:
    """What a scan of seqs ``lo..hi`` found (picklable, for worker processes)."""

    lo: int
    hi: int
    count: int = 0
    first_prev: str = GENESIS_HASH
    first_time: str = ""
    last_hash: str = GENESIS_HASH
    last_time: str = ""
    segments: list[tuple[int, list[Node]]] = field(default_factory=list)
    error: tuple[str, str, int | None] | None = None


_MOVED = re.compile(r',"(?:decision|details|outcome|seq)":')
_ERRORS: dict[str, type[AuditVerificationError]] = {"ChainError": ChainError}


def _check_columns(row: Any) -> None:
    """Each JSON column parses on its own (see the module docstring)."""
    try:
        event_from_row(row)
    except CorruptEventError as exc:
        raise ChainError(str(exc), seq=exc.seq) from exc


def _check_deep(row: Any) -> None:
    _check_columns(row)
    event = event_from_row(row)
    if event.to_json() != line_from_row(row):
        raise ChainError(f"event seq {event.seq}: a column is not canonical JSON", seq=event.seq)


def scan_range(
    conn: Connection, lo: int, hi: int, boundaries: Sequence[int], *, deep: bool = False
) -> RangeResult:
    """Check seqs ``lo..hi`` and collect the subtrees between ``boundaries``.

    Never raises for bad evidence: the first problem is returned in ``error``
    so that a parent process can tell which range failed first.
    """
    result = RangeResult(lo, hi)
    try:
        _scan(conn, result, [b for b in boundaries if lo <= b <= hi], deep)
    except AuditVerificationError as exc:
        result.error = (type(exc).__name__, str(exc), exc.seq)
    return result


def _scan(conn: Connection, result: RangeResult, boundaries: list[int], deep: bool) -> None:
    """The hot loop: one pass per event, inlined (a method call per event would
    cost a tenth of the budget). Event digests wait in ``pending`` and are
    folded into perfect subtrees every :data:`FOLD` events (and at checkpoint
    boundaries and the range's end), one list pass per tree level; ``nodes``
    holds the subtrees since the previous boundary."""
    sha256, moved, quote = hashlib.sha256, _MOVED.search, encode_basestring
    quoted: dict[str, str] = {}
    lo, hi = result.lo, result.hi
    stops = iter([*boundaries, hi])
    stop = next(stops)
    flush = min(stop, (lo | (FOLD - 1)) + 1)  # the next seq whose digest ends a fold
    first = lo - 1  # the leaf index of pending[0]
    pending: list[bytes] = []
    nodes: list[Node] = []
    expected = lo
    with scan_events(conn, lo, hi, STREAM_BATCH) as scanned:
        head = next(scanned, None)
        rows = scanned if head is None else itertools.chain((head,), scanned)
        if head is not None:
            result.first_prev, result.first_time = head[8], head[1]
        prev, last_time = result.first_prev, result.first_time
        for row in rows:
            seq, time, actor, action, resource, decision, outcome, details, prev_hash, stored = row
            if seq != expected:
                raise ChainError(f"event seq {expected} is missing (next is {seq})", seq=expected)
            if prev_hash != prev:
                raise ChainError(
                    f"event seq {seq}: prev_hash does not match the hash of seq {seq - 1}; "
                    "an event was inserted, removed or reordered before it",
                    seq=seq,
                )
            qa = quoted.get(action) or quoted.setdefault(action, quote(action))
            qo = quoted.get(outcome) or quoted.setdefault(outcome, quote(outcome))
            body = (
                f'{{"action":{qa},"actor":{actor},"decision":{decision},"details":{details},'
                f'"outcome":{qo},"prev_hash":"{prev_hash}","resource":{resource},"seq":{seq},'
                f'"time":{quote(time)}}}'
            )
            try:
                digest = sha256(body.encode()).digest()
            except UnicodeEncodeError:
                digest = b""
            if digest.hex() != stored:
                raise ChainError(
                    f"event seq {seq}: stored hash does not match its content", seq=seq
                )
            if time < last_time:
                raise ChainError(f"event seq {seq}: time goes backwards", seq=seq)
            if deep:
                _check_deep(row)
            elif moved(actor) or moved(decision) or moved(details) or moved(resource):
                _check_columns(row)
            pending.append(digest)
            if seq == flush:
                _push(nodes, perfect_subtrees(first, leaf_hashes(pending)))
                first, pending = seq, []
                if seq == stop:
                    result.segments.append((seq, nodes))
                    stop, nodes = next(stops, -1), []
                flush = min(stop, (seq | (FOLD - 1)) + 1) if stop >= 0 else -1
            prev, last_time, expected = stored, time, seq + 1
    if expected != hi + 1:
        raise ChainError(
            f"events {expected}..{hi} are missing: deleted after the head recorded them",
            seq=expected,
        )
    result.count = expected - lo
    result.last_hash, result.last_time = prev, last_time


def _push(nodes: list[Node], subtrees: list[Node]) -> None:
    """Append aligned perfect subtrees, merging each with its left sibling."""
    for level, index, digest in subtrees:
        while index & 1 and nodes and nodes[-1][:2] == (level, index - 1):
            digest = node_hash(nodes.pop()[2], digest)
            level, index = level + 1, index >> 1
        nodes.append((level, index, digest))


# -- steps 1, 3 and 4 ---------------------------------------------------------


def _open_checkpoints(
    conn: Connection, verifier: NoteVerifier, origin: str | None
) -> list[CheckpointBody]:
    """Step 1."""
    opened = []
    for checkpoint in list_checkpoints(conn):
        try:
            opened.append(checkpoint.open(verifier, origin=origin))
        except AuditVerificationError as exc:
            raise type(exc)(f"checkpoint {checkpoint.tree_size}: {exc}", seq=exc.seq) from exc
    return opened


class _Tree:
    """Step 3: joins range results in order and checks every checkpoint."""

    def __init__(self, checkpoints: Sequence[CheckpointBody]) -> None:
        self._by_size: dict[int, list[CheckpointBody]] = {}
        for body in checkpoints:
            self._by_size.setdefault(body.tree_size, []).append(body)
        self._compact = CompactRange()
        self._since: list[Node] = []  # subtrees since the previous checkpoint
        self._previous: tuple[int, bytes, list[Node]] = (0, hashlib.sha256(b"").digest(), [])
        self._check_size(0)

    def add(self, size: int, nodes: list[Node]) -> None:
        for level, index, digest in nodes:
            self._compact.push(level, digest)
            self._since.append((level, index, digest))
        self._check_size(size)

    def _check_size(self, size: int) -> None:
        for body in self._by_size.pop(size, []):
            self._check(body)

    def _check(self, body: CheckpointBody) -> None:
        old_size, old_root, old_nodes = self._previous
        root = self._compact.root()
        if root != body.root_hash:
            raise CheckpointMismatchError(
                f"events {old_size + 1}..{body.tree_size} do not produce the root signed in "
                f"checkpoint {body.tree_size}: they were rewritten after it was signed",
                seq=old_size + 1,
            )
        known = {(lv, ix): h for lv, ix, h in [*old_nodes, *self._since]}
        proof = consistency_proof(SparseSubtrees(known), old_size, body.tree_size)
        try:
            verify_consistency(old_size, body.tree_size, old_root, body.root_hash, proof)
        except ProofError as exc:
            raise ProofError(
                f"checkpoint {body.tree_size} is not consistent with checkpoint {old_size}: {exc}",
                seq=old_size + 1,
            ) from exc
        shape = decompose(0, body.tree_size)
        compact = [(lv, ix, h) for (lv, ix), h in zip(shape, self._compact.nodes(), strict=True)]
        self._previous, self._since = (body.tree_size, root, compact), []

    def finish(self, count: int) -> bytes:
        if self._by_size:
            size = min(self._by_size)
            raise ChainError(
                f"checkpoint {size} was signed but the log holds only {count} events: "
                f"events from seq {count + 1} were deleted",
                seq=count + 1,
            )
        return self._compact.root()


def _join(results: Sequence[RangeResult], tree: _Tree) -> tuple[int, str]:
    """Steps 2 and 3 across ranges, in seq order; returns (count, last hash)."""
    prev, last_time, count = GENESIS_HASH, "", 0
    for result in results:
        at_start = result.error is not None and result.error[2] == result.lo
        if not at_start and result.first_prev != prev:
            raise ChainError(
                f"event seq {result.lo}: prev_hash does not match the hash of seq "
                f"{result.lo - 1}; an event was inserted, removed or reordered before it",
                seq=result.lo,
            )
        if not at_start and result.first_time < last_time:
            raise ChainError(f"event seq {result.lo}: time goes backwards", seq=result.lo)
        if result.error is not None:
            kind, message, seq = result.error
            raise _ERRORS.get(kind, AuditVerificationError)(message, seq=seq)
        for size, nodes in result.segments:
            tree.add(size, nodes)
        prev, last_time, count = result.last_hash, result.last_time, count + result.count
    return count, prev


def _check_head(conn: Connection, count: int, last_hash: str) -> None:
    """Step 4: the head row agrees; anything past it links as a concurrent append."""
    head = read_head(conn, lock=False)
    following = conn.execute(
        select(audit_events.c.prev_hash).where(audit_events.c.seq == count + 1)
    ).scalar()
    if head.seq == count and head.hash != last_hash:
        raise ChainError(f"audit_head disagrees with event seq {count}", seq=count)
    if head.seq == count and following is not None:
        raise ChainError(
            f"events after seq {count} were written around the audit writer", seq=count + 1
        )
    if head.seq > count and following != last_hash:
        raise ChainError(
            f"audit_head records {head.seq} events but the log ends at seq {count}: "
            f"events from seq {count + 1} were deleted",
            seq=count + 1,
        )
    if head.seq < count:
        raise ChainError(f"audit_head went backwards to seq {head.seq}", seq=head.seq + 1)


def _key(verifier: NoteVerifier | str) -> NoteVerifier:
    return NoteVerifier.from_text(verifier) if isinstance(verifier, str) else verifier


def verify_log(
    conn: Connection,
    verifier: NoteVerifier | str,
    *,
    origin: str | None = None,
    deep: bool = False,
) -> VerificationReport:
    """Verify chain, tree and checkpoints on one connection; raise on the first problem.

    ``verifier`` is the log's verifier key (object or text). Run it in a read
    transaction (on SQLite, ``sqlite_begin="DEFERRED"`` avoids holding the
    write lock). Events appended after the start are not checked.
    """
    key, started = _key(verifier), _time.perf_counter()
    checkpoints = _open_checkpoints(conn, key, origin)
    size = read_head(conn, lock=False).seq
    boundaries = sorted({c.tree_size for c in checkpoints})
    results = [scan_range(conn, 1, size, boundaries, deep=deep)] if size else []
    return _finish(conn, checkpoints, results, started, workers=1)


def _finish(
    conn: Connection,
    checkpoints: list[CheckpointBody],
    results: list[RangeResult],
    started: float,
    *,
    workers: int,
) -> VerificationReport:
    tree = _Tree(checkpoints)
    count, last_hash = _join(results, tree)
    root = tree.finish(count)
    _check_head(conn, count, last_hash)
    return VerificationReport(
        events=count,
        checkpoints=len(checkpoints),
        last_hash=last_hash,
        root_hash=root.hex(),
        seconds=_time.perf_counter() - started,
        workers=workers,
    )


def split_ranges(size: int, workers: int) -> list[tuple[int, int]]:
    """Seq ranges ``lo..hi`` covering ``1..size``: about :data:`RANGES_PER_WORKER`
    per process, each a power of two long (so a range's leaves form one perfect
    subtree unless a checkpoint falls inside it)."""
    step = max(1, size // (workers * RANGES_PER_WORKER))
    step = 1 << (step.bit_length() - 1)
    return [(lo, min(size, lo + step - 1)) for lo in range(1, size + 1, step)]


def _claims(counter: Any, count: int) -> Iterator[int]:
    """Indexes of the ranges no process has taken yet, in order; ``counter`` is a
    shared ``multiprocessing.Value`` holding the next one."""
    while True:
        with counter.get_lock():
            index = int(counter.value)
            counter.value = index + 1
        if index >= count:
            return
        yield index


def _worker(
    url: str,
    ranges: list[tuple[int, int]],
    boundaries: list[int],
    deep: bool,
    counter: Any,
    done: Any,
) -> None:
    """A worker process: scan ranges until none is left, put ``(index, result)``
    for each on ``done``, then ``None`` (also after an error)."""
    gc.disable()  # rows die by reference counting; the collector would only walk them
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            for index in _claims(counter, len(ranges)):
                done.put((index, scan_range(conn, *ranges[index], boundaries, deep=deep)))
    finally:  # on an error too: the parent scans what it did not receive, and raises there
        done.put(None)
        engine.dispose()


def verify_database(
    url: str,
    verifier: NoteVerifier | str,
    *,
    origin: str | None = None,
    deep: bool = False,
    workers: int | None = None,
) -> VerificationReport:
    """:func:`verify_log` for the database at ``url``, using ``workers`` processes.

    The processes scan contiguous seq ranges (see :func:`_parallel`); this one
    joins the ranges' links and subtrees in seq order, so the outcome (and the
    first bad seq) is the same as a single scan. Defaults to one process per
    CPU; small logs are verified in-process.
    """
    key, started = _key(verifier), _time.perf_counter()
    workers = max(1, workers or os.cpu_count() or 1)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            checkpoints = _open_checkpoints(conn, key, origin)
            size = read_head(conn, lock=False).seq
            boundaries = sorted({c.tree_size for c in checkpoints})
            if workers == 1 or size < PARALLEL_THRESHOLD:
                results = [scan_range(conn, 1, size, boundaries, deep=deep)] if size else []
                return _finish(conn, checkpoints, results, started, workers=1)
            results = _parallel(conn, url, size, boundaries, deep, workers)
            return _finish(conn, checkpoints, results, started, workers=workers)
    finally:
        engine.dispose()


def _parallel(
    conn: Connection, url: str, size: int, boundaries: list[int], deep: bool, workers: int
) -> list[RangeResult]:
    """Scan the ranges of :func:`split_ranges` in ``workers - 1`` processes and
    this one, each taking the next untaken range until none is left (so nobody
    waits at the end, and this process works while the others start up).

    A range that a worker took but did not deliver (its database connection
    failed, it was killed) is scanned here afterwards, so its error, if it has
    one, is raised in this process.
    """
    ranges = split_ranges(size, workers)
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0)
    done = context.Queue()
    processes = [
        context.Process(
            target=_worker, args=(url, ranges, boundaries, deep, counter, done), daemon=True
        )
        for _ in range(workers - 1)
    ]
    with _plain_main():
        for process in processes:
            process.start()
    results: dict[int, RangeResult] = {}
    try:
        for index in _claims(counter, len(ranges)):
            results[index] = scan_range(conn, *ranges[index], boundaries, deep=deep)
        _receive(done, processes, results)
    finally:
        with counter.get_lock():
            counter.value = len(ranges)  # a worker still scanning takes no further range
        for process in processes:
            process.join(timeout=_JOIN_SECONDS)
            if process.is_alive():
                process.terminate()
    for index, (lo, hi) in enumerate(ranges):
        if index not in results:
            results[index] = scan_range(conn, lo, hi, boundaries, deep=deep)
    return [results[index] for index in range(len(ranges))]


@contextmanager
def _plain_main() -> Iterator[None]:
    """Start spawned workers without re-running the parent's ``__main__``.

    A spawned child first re-imports the parent's main module; under the
    ``arbiter`` console script that is the whole CLI (about 0.9 s of CPU per
    worker, measured), while a worker needs only this module, which it
    imports to find its target. The main module is swapped only while
    ``start()`` records what the child must prepare.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _receive(done: Any, processes: list[Any], results: dict[int, RangeResult]) -> None:
    """Collect results until every worker has said it is finished or has died."""
    running = len(processes)
    while running:
        try:
            item = done.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if not any(process.is_alive() for process in processes) and done.empty():
                return
            continue
        if item is None:
            running -= 1
        else:
            index, result = item
            results[index] = result
