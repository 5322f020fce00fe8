"""Export events for auditors as JSON Lines, and verify such a file offline.

File layout (UTF-8, one JSON value per line, ``\\n`` line ends)::

    line 1      header: {"format": "arbiter-audit-export", "version": 1,
                         "origin", "since", "until", "first_seq", "last_seq",
                         "count", "tree_size", "checkpoint" (signed note),
                         "before", "after" (the neighbouring events, or null),
                         "range_proof": {"left": [hex], "right": [hex]},
                         "latest_checkpoint" (signed note or null),
                         "consistency_proof": [hex]}
    lines 2..   one event per line: RFC 8785 JSON of the event with "hash"
    last line   trailer: {"format": "arbiter-audit-export-end", "count",
                          "last_hash"}

The exported events are the contiguous seqs ``first_seq..last_seq``: from the
first event at or after ``since`` to the last at or before ``until``. Event
times never decrease along the chain, so with the neighbouring events
``first_seq - 1`` (before ``since``) and ``last_seq + 1`` (after ``until``)
the file proves it holds *every* event of the window, not only genuine ones.

How a verifier with only the file and the log's public key checks it
(:func:`verify_export`):

1. the checkpoint note is signed by the key; its body gives tree size N and
   root R; a later checkpoint, if included, is signed too and the
   consistency proof shows it extends the first;
2. the neighbours and every event line are the canonical JSON of an event
   whose hash recomputes, whose seq is the next one, whose ``prev_hash`` is the
   previous event's hash and whose time does not go backwards;
3. the neighbours lie outside the window and the events inside it;
4. the leaves of the neighbours and events, with the range proof (the maximal
   subtrees left and right of them in the tree of size N), hash to R: the
   events are exactly those the log signed, none added, none removed;
5. the trailer's count and last hash match, and nothing follows it.

Writing and verifying both stream: memory stays flat for any number of events.
"""

from __future__ import annotations

import json
import os
import time as _time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, func, select

from audit._rows import EVENT_COLUMNS, STREAM_BATCH, line_from_row
from audit.canonical import canonicalize, event_body, sha256_hex
from audit.chain import normalize_time, read_head
from audit.checkpoint import CheckpointBody, covering_checkpoint, latest_checkpoint, open_checkpoint
from audit.errors import (
    AuditVerificationError,
    ChainError,
    CheckpointError,
    EventEncodingError,
    ExportTruncatedError,
    ExportVerificationError,
    ProofError,
)
from audit.merkle import (
    CompactRange,
    consistency_proof,
    event_leaf,
    range_proof,
    verify_consistency,
    verify_range,
)
from audit.note import NoteVerifier
from audit.schema import audit_events
from audit.tree import DatabaseSubtrees

EXPORT_FORMAT = "arbiter-audit-export"
EXPORT_END = "arbiter-audit-export-end"
EXPORT_VERSION = 1
_KEYS = "seq time actor action resource decision outcome details prev_hash hash"
EVENT_KEYS = frozenset(_KEYS.split(" "))
MAX_LINE_BYTES = 64 * 1024 * 1024  # a DoS limit for the offline verifier


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export_events` wrote."""

    first_seq: int
    last_seq: int
    count: int
    tree_size: int
    seconds: float


@dataclass(frozen=True)
class ExportReport:
    """What :func:`verify_export` verified (returned only when all holds): the
    events ``first_seq..last_seq`` are genuine and, as of the signed tree of
    ``tree_size`` events, they are all the events of the window."""

    origin: str
    first_seq: int
    last_seq: int
    count: int
    tree_size: int
    root_hash: str
    latest_tree_size: int | None


# -- writing -----------------------------------------------------------------


def _seq_bounds(
    conn: Connection, since: str | None, until: str | None, first: int | None, last: int | None
) -> tuple[int, int, int]:
    """(first seq, last seq, head seq); ``first == last + 1`` for an empty window."""
    head = read_head(conn, lock=False).seq
    low, high = max(first or 1, 1), min(head, last if last is not None else head)
    c = audit_events.c
    if since is not None:
        found = conn.execute(select(func.min(c.seq)).where(c.time >= since)).scalar()
        low = max(low, int(found)) if found is not None else head + 1
    if until is not None:
        found = conn.execute(select(func.max(c.seq)).where(c.time <= until)).scalar()
        high = min(high, int(found)) if found is not None else 0
    high = max(high, low - 1)
    return low, high, head


def _event_line(conn: Connection, seq: int) -> tuple[str, str]:
    row = conn.execute(select(*EVENT_COLUMNS).where(audit_events.c.seq == seq)).first()
    if row is None:
        raise ChainError(f"event seq {seq} is missing from the log", seq=seq)
    return line_from_row(row), str(row[-1])


def _header(
    conn: Connection, low: int, high: int, head: int, window: tuple[str | None, str | None]
) -> dict[str, Any]:
    before = low - 1 if low > 1 else None
    after = high + 1 if high < head else None
    checkpoint = covering_checkpoint(conn, after or high)
    if checkpoint is None and after is not None:
        checkpoint, after = covering_checkpoint(conn, high), None  # the end stays unproven
    if checkpoint is None:
        raise CheckpointError(
            f"no signed checkpoint covers seq {high} yet: create one "
            "(`arbiter audit checkpoint`, or audit.create_checkpoint) and export again"
        )
    source = DatabaseSubtrees(conn)
    start, end = (before or low) - 1, after or high
    left, right = range_proof(source, start, end, checkpoint.tree_size) if end > start else ([], [])
    header: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "origin": checkpoint.note.split("\n", 1)[0],
        "since": window[0],
        "until": window[1],
        "first_seq": low,
        "last_seq": high,
        "count": high - low + 1,
        "tree_size": checkpoint.tree_size,
        "checkpoint": checkpoint.note,
        "before": None if before is None else _event_line(conn, before)[0],
        "after": None if after is None else _event_line(conn, after)[0],
        "range_proof": {"left": [h.hex() for h in left], "right": [h.hex() for h in right]},
        "latest_checkpoint": None,
        "consistency_proof": [],
    }
    latest = latest_checkpoint(conn)
    if latest is not None and latest.tree_size > checkpoint.tree_size:
        proof = consistency_proof(source, checkpoint.tree_size, latest.tree_size)
        header["latest_checkpoint"] = latest.note
        header["consistency_proof"] = [h.hex() for h in proof]
    return header


def _write_events(conn: Connection, out: IO[str], low: int, high: int) -> str | None:
    query = (
        select(*EVENT_COLUMNS)
        .where(audit_events.c.seq >= low, audit_events.c.seq <= high)
        .order_by(audit_events.c.seq)
        .execution_options(yield_per=STREAM_BATCH)
    )
    expected, last_hash = low, None
    for rows in conn.execute(query).partitions():
        if rows[0][0] != expected or rows[-1][0] != expected + len(rows) - 1:
            missing = next(s for s, r in enumerate(rows, expected) if r[0] != s)
            raise ChainError(f"event seq {missing} is missing from the log", seq=missing)
        out.write("".join([line_from_row(row) + "\n" for row in rows]))
        expected += len(rows)
        last_hash = str(rows[-1][-1])
    if expected != high + 1:
        raise ChainError(f"event seq {expected} is missing from the log", seq=expected)
    return last_hash


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def export_events(
    conn: Connection,
    destination: str | os.PathLike[str] | IO[str],
    *,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    first_seq: int | None = None,
    last_seq: int | None = None,
) -> ExportSummary:
    """Write the events of a time window (and/or seq range) with checkpoint and proofs.

    A path is written to ``<path>.partial`` and renamed when complete, so a
    crash never leaves a plausible-looking file. Raises
    :class:`CheckpointError` when no checkpoint covers the window's last event:
    create one first. Run it in one read transaction for a consistent view.
    """
    started = _time.perf_counter()
    window = (
        None if since is None else normalize_time(since),
        None if until is None else normalize_time(until),
    )
    low, high, head = _seq_bounds(conn, *window, first_seq, last_seq)
    header = _header(conn, low, high, head, window)
    if isinstance(destination, str | os.PathLike):
        target = Path(destination)
        partial = target.with_name(target.name + ".partial")
        with open(partial, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
            _write_all(conn, out, header, low, high)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    else:
        _write_all(conn, destination, header, low, high)
    return ExportSummary(low, high, header["count"], header["tree_size"],
                         _time.perf_counter() - started)  # fmt: skip


def _write_all(conn: Connection, out: IO[str], header: dict[str, Any], low: int, high: int) -> None:
    out.write(_dump(header))
    last_hash = _write_events(conn, out, low, high) if header["count"] else None
    out.write(_dump({"format": EXPORT_END, "count": header["count"], "last_hash": last_hash}))


# -- verifying ---------------------------------------------------------------


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, str]]:
    number = 0
    while raw := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise ExportVerificationError("line longer than the 64 MiB limit", line=number)
        if not raw.endswith(b"\n"):
            raise ExportTruncatedError("the last line is cut off (no newline)", line=number)
        try:
            yield number, raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise ExportVerificationError("line is not UTF-8", line=number) from None


def _object(text: str, number: int) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise ExportVerificationError("line is not JSON", line=number) from None
    if not isinstance(value, dict):
        raise ExportVerificationError("line is not a JSON object", line=number)
    return value


def _field(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], number: int) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ExportVerificationError(
            f"field {key!r} is missing or has the wrong type", line=number
        )
    return value


def _hex_hashes(values: Any, what: str) -> list[bytes]:
    try:
        if not isinstance(values, list):
            raise TypeError(what)
        return [bytes.fromhex(v) for v in values]
    except (TypeError, ValueError):
        raise ExportVerificationError(f"{what} is not a list of hex hashes", line=1) from None


def _open(note: Any, key: NoteVerifier, origin: str | None, what: str) -> CheckpointBody:
    if not isinstance(note, str):
        raise ExportVerificationError(f"{what} is not a signed note", line=1)
    try:
        return open_checkpoint(note, key, origin=origin)
    except AuditVerificationError as exc:
        raise type(exc)(f"{what} in the export header: {exc}") from exc


class _Header:
    """Step 1, and what the header promises about the rest of the file."""

    def __init__(self, obj: dict[str, Any], key: NoteVerifier, origin: str | None) -> None:
        if obj.get("format") != EXPORT_FORMAT or obj.get("version") != EXPORT_VERSION:
            raise ExportVerificationError(f"not an {EXPORT_FORMAT} v{EXPORT_VERSION} file", line=1)
        self.count = _field(obj, "count", int, 1)
        self.first = _field(obj, "first_seq", int, 1)
        self.last = _field(obj, "last_seq", int, 1)
        if self.first < 1 or self.count < 0 or self.last - self.first + 1 != self.count:
            raise ExportVerificationError("first_seq, last_seq and count disagree", line=1)
        self.since, self.until = obj.get("since"), obj.get("until")
        self.before, self.after = obj.get("before"), obj.get("after")
        self.body = _open(obj.get("checkpoint"), key, origin, "checkpoint")
        end = self.last + (self.after is not None)
        if end > self.body.tree_size:
            raise ExportVerificationError("events extend past the signed checkpoint", line=1)
        proof = obj.get("range_proof")
        if not isinstance(proof, dict):
            raise ExportVerificationError("range_proof is missing", line=1)
        self.left = _hex_hashes(proof.get("left"), "range_proof.left")
        self.right = _hex_hashes(proof.get("right"), "range_proof.right")
        self.latest_size = self._check_latest(obj, key, origin)

    def _check_latest(
        self, obj: dict[str, Any], key: NoteVerifier, origin: str | None
    ) -> int | None:
        if obj.get("latest_checkpoint") is None:
            return None
        latest = _open(obj["latest_checkpoint"], key, origin, "latest checkpoint")
        proof = _hex_hashes(obj.get("consistency_proof"), "consistency_proof")
        try:
            verify_consistency(
                self.body.tree_size, latest.tree_size, self.body.root_hash, latest.root_hash, proof
            )
        except ProofError as exc:
            raise ProofError(f"the latest checkpoint does not extend the export's: {exc}") from exc
        return latest.tree_size

    def check_complete(self) -> None:
        """No event of the range is missing at either end (as of the checkpoint).

        The exporter always includes both neighbours, except before seq 1 and
        after the checkpoint's last event, so a missing one means it was cut.
        """
        if self.before is None and self.first != 1:
            raise ExportVerificationError(f"the event before seq {self.first} was removed", line=1)
        if self.after is None and self.last != self.body.tree_size:
            raise ExportVerificationError(f"the event after seq {self.last} was removed", line=1)


def _event_pieces(obj: dict[str, Any], number: int) -> dict[str, Any]:
    if set(obj) != EVENT_KEYS:
        raise ExportVerificationError("line is not an event (wrong set of keys)", line=number)
    pieces: dict[str, Any] = {"seq": _field(obj, "seq", int, number)}
    for key in ("time", "action", "outcome", "prev_hash", "hash"):
        pieces[key] = _field(obj, key, str, number)
    for key in ("actor", "resource", "details"):
        pieces[key] = canonicalize(_field(obj, key, dict, number))[0]
    decision = obj["decision"]
    if decision is not None and not isinstance(decision, dict):
        raise ExportVerificationError("field 'decision' has the wrong type", line=number)
    pieces["decision"] = canonicalize(decision)[0]
    return pieces


class _Chain:
    """Steps 2 and 4: events in order, linked, hashed, and leaves into the range."""

    def __init__(self, header: _Header) -> None:
        start = header.first - 1 - (header.before is not None)
        self.compact = CompactRange(start, header.left)
        self.expected = start + 1
        self.prev: str | None = None
        self.time = ""

    def add(self, obj: dict[str, Any], text: str, number: int) -> dict[str, Any]:
        """Check one event line; returns its pieces."""
        try:
            pieces = _event_pieces(obj, number)
        except EventEncodingError as exc:
            raise ExportVerificationError(
                f"event is not RFC 8785 JSON: {exc}", line=number
            ) from exc
        seq = pieces["seq"]
        if seq != self.expected:
            raise ExportVerificationError(
                f"expected event seq {self.expected}, found {seq}", line=number, seq=self.expected
            )
        if event_body(**pieces) != text:
            raise ExportVerificationError(
                f"event seq {seq} is not in canonical form: edited", line=number, seq=seq
            )
        digest = pieces.pop("hash")
        if sha256_hex(event_body(**pieces)) != digest:
            raise ExportVerificationError(
                f"event seq {seq} does not match its hash: edited", line=number, seq=seq
            )
        if self.prev is not None and pieces["prev_hash"] != self.prev:
            raise ExportVerificationError(
                f"event seq {seq} does not link to seq {seq - 1}: events removed, added or "
                "reordered",
                line=number,
                seq=seq,
            )
        if pieces["time"] < self.time:
            raise ExportVerificationError(f"event seq {seq}: time goes backwards", line=number)
        self.compact.append(event_leaf(digest))
        self.prev, self.time, self.expected = digest, pieces["time"], seq + 1
        return pieces

    def neighbour(self, line: Any) -> str:
        """A neighbour event from the header; returns its time."""
        if not isinstance(line, str):
            raise ExportVerificationError("a neighbouring event is not a JSON text", line=1)
        return str(self.add(_object(line, 1), line, 1)["time"])


def _check_window(header: _Header, before: str | None, first: str | None,
                  last: str | None, after: str | None) -> None:  # fmt: skip
    """Step 3: the neighbours lie outside the window, the events inside it."""
    since, until = header.since, header.until
    if since is not None and (
        (before is not None and not before < since) or (first is not None and first < since)
    ):
        raise ExportVerificationError(f"the events do not start the window at {since}", line=1)
    if until is not None and (
        (after is not None and not after > until) or (last is not None and last > until)
    ):
        raise ExportVerificationError(f"the events do not end the window at {until}", line=1)


def _check_events(lines: Iterator[tuple[int, str]], header: _Header) -> str | None:
    """Steps 2 to 4 over the whole file; returns the last event's hash."""
    chain = _Chain(header)
    before = None if header.before is None else chain.neighbour(header.before)
    first = last = None
    for number, text in lines if header.count else ():
        obj = _object(text, number)
        if obj.get("format") == EXPORT_END:
            raise ExportVerificationError(
                f"trailer after {chain.expected - header.first} of {header.count} events: "
                "events removed",
                line=number,
            )
        last = str(chain.add(obj, text, number)["time"])
        first = first or last
        if chain.expected > header.last:
            break
    if chain.expected <= header.last:
        raise ExportTruncatedError(
            f"the file ends after {chain.expected - header.first} of {header.count} events"
        )
    last_hash = chain.prev if header.count else None
    after = None if header.after is None else chain.neighbour(header.after)
    _check_window(header, before, first, last, after)
    if header.count or before is not None or after is not None:
        try:
            verify_range(chain.compact, header.body.tree_size, header.right, header.body.root_hash)
        except ProofError as exc:
            raise ProofError(
                "the exported events are not the ones checkpoint "
                f"{header.body.tree_size} signed: {exc}"
            ) from exc
    return last_hash


def _finish(lines: Iterator[tuple[int, str]], header: _Header, last_hash: str | None) -> None:
    """Step 5."""
    trailer = next(lines, None)
    if trailer is None:
        raise ExportTruncatedError("the file ends before its trailer line")
    number, text = trailer
    obj = _object(text, number)
    if obj.get("format") != EXPORT_END:
        raise ExportVerificationError("expected the trailer line", line=number)
    if obj.get("count") != header.count or obj.get("last_hash") != last_hash:
        raise ExportVerificationError(
            "trailer count or last hash disagrees with the events", line=number
        )
    extra = next(lines, None)
    if extra is not None:
        raise ExportVerificationError("content after the trailer line", line=extra[0])


def verify_export(
    path: str | os.PathLike[str], public_key: NoteVerifier | str, *, origin: str | None = None
) -> ExportReport:
    """Verify an export file offline; raise :class:`AuditVerificationError`.

    ``public_key`` is the log's verifier key text as served by
    ``GET /api/v1/audit/public-key``. No database and no network are used.
    """
    key = NoteVerifier.from_text(public_key) if isinstance(public_key, str) else public_key
    with open(path, "rb") as stream:
        lines = _lines(stream)
        first = next(lines, None)
        if first is None:
            raise ExportTruncatedError("the file is empty")
        header = _Header(_object(first[1], 1), key, origin)
        header.check_complete()
        last_hash = _check_events(lines, header)
        _finish(lines, header, last_hash)
    return ExportReport(
        origin=header.body.origin,
        first_seq=header.first,
        last_seq=header.last,
        count=header.count,
        tree_size=header.body.tree_size,
        root_hash=header.body.root_hash.hex(),
        latest_tree_size=header.latest_size,
    )
