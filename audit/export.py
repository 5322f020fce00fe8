"""Export events for auditors as JSON Lines, and verify such a file offline.

File layout (UTF-8, one JSON value per line, ``\\n`` line ends)::

    line 1      header: {"format": "arbiter-audit-export", "version": 1,
                         "origin", "since", "until", "first_seq", "last_seq",
                         "count", "checkpoint" (signed note), "range_proof":
                         {"left": [hex], "right": [hex]}, "latest_checkpoint"
                         (signed note or null), "consistency_proof": [hex]}
    lines 2..   one event per line: RFC 8785 JSON of the event with "hash"
    last line   trailer: {"format": "arbiter-audit-export-end", "count",
                          "last_hash"}

The exported events are the contiguous seqs ``first_seq..last_seq``: the first
event at or after ``since`` to the last at or before ``until`` (event times
never decrease along the chain, so this is exactly the time window).

How a verifier with only the file and the log's public key checks it
(:func:`verify_export`):

1. the checkpoint note is signed by the key; its body gives the tree size N
   and root R;
2. every event line is the canonical JSON of an event whose hash recomputes,
   whose seq follows the previous one and whose ``prev_hash`` is the previous
   event's hash;
3. the leaves ``first_seq - 1 .. last_seq - 1`` together with the range proof
   (the maximal subtrees left of the range and right of it, up to N) hash to
   R: the events are exactly those the log signed, none added, none removed;
4. if a later checkpoint is included, it is signed by the key and the
   consistency proof shows it extends the first one;
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
from audit.checkpoint import Checkpoint, covering_checkpoint, latest_checkpoint, open_checkpoint
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
EVENT_KEYS = frozenset(
    {
        "seq",
        "time",
        "actor",
        "action",
        "resource",
        "decision",
        "outcome",
        "details",
        "prev_hash",
        "hash",
    }
)
MAX_LINE_BYTES = 64 * 1024 * 1024  # a DoS limit for the offline verifier


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export_events` wrote."""

    first_seq: int | None
    last_seq: int | None
    count: int
    tree_size: int | None
    seconds: float


@dataclass(frozen=True)
class ExportReport:
    """What :func:`verify_export` verified (returned only when all holds)."""

    origin: str
    first_seq: int | None
    last_seq: int | None
    count: int
    tree_size: int
    root_hash: str
    latest_tree_size: int | None


# -- writing -----------------------------------------------------------------


def _seq_bounds(
    conn: Connection, since: str | None, until: str | None, first: int | None, last: int | None
) -> tuple[int, int]:
    low, high = max(first or 1, 1), read_head(conn, lock=False).seq
    if last is not None:
        high = min(high, last)
    if since is not None:
        found = conn.execute(
            select(func.min(audit_events.c.seq)).where(audit_events.c.time >= since)
        ).scalar()
        low = max(low, int(found)) if found is not None else high + 1
    if until is not None:
        found = conn.execute(
            select(func.max(audit_events.c.seq)).where(audit_events.c.time <= until)
        ).scalar()
        high = min(high, int(found)) if found is not None else 0
    return low, high


def _proof_fields(conn: Connection, checkpoint: Checkpoint, low: int, high: int) -> dict[str, Any]:
    source = DatabaseSubtrees(conn)
    left, right = range_proof(source, low - 1, high, checkpoint.tree_size)
    latest = latest_checkpoint(conn)
    fields: dict[str, Any] = {
        "checkpoint": checkpoint.note,
        "range_proof": {"left": [h.hex() for h in left], "right": [h.hex() for h in right]},
        "latest_checkpoint": None,
        "consistency_proof": [],
    }
    if latest is not None and latest.tree_size > checkpoint.tree_size:
        proof = consistency_proof(source, checkpoint.tree_size, latest.tree_size)
        fields["latest_checkpoint"] = latest.note
        fields["consistency_proof"] = [h.hex() for h in proof]
    return fields


def _header(
    conn: Connection, low: int, high: int, since: str | None, until: str | None
) -> dict[str, Any]:
    count = max(0, high - low + 1)
    header: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "since": since,
        "until": until,
        "first_seq": low if count else None,
        "last_seq": high if count else None,
        "count": count,
    }
    checkpoint = covering_checkpoint(conn, high if count else 0)
    if checkpoint is None:
        raise CheckpointError(
            f"no signed checkpoint covers seq {high} yet: create one "
            "(`arbiter audit checkpoint`, or audit.create_checkpoint) and export again"
        )
    header["origin"] = checkpoint.note.split("\n", 1)[0]
    header["tree_size"] = checkpoint.tree_size
    if count:
        header.update(_proof_fields(conn, checkpoint, low, high))
    else:
        header.update(checkpoint=checkpoint.note, range_proof={"left": [], "right": []})
        header.update(latest_checkpoint=None, consistency_proof=[])
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
    """Write events in the window (and seq bounds) with checkpoint and proofs.

    A path is written to ``<path>.partial`` and renamed when complete, so a
    crash never leaves a plausible-looking file. Raises
    :class:`CheckpointError` when no checkpoint covers the window's last event.
    """
    started = _time.perf_counter()
    since_text = None if since is None else normalize_time(since)
    until_text = None if until is None else normalize_time(until)
    low, high = _seq_bounds(conn, since_text, until_text, first_seq, last_seq)
    header = _header(conn, low, high, since_text, until_text)
    if isinstance(destination, (str, os.PathLike)):
        target = Path(destination)
        partial = target.with_name(target.name + ".partial")
        with open(partial, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
            _write_all(conn, out, header, low, high)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    else:
        _write_all(conn, destination, header, low, high)
    return ExportSummary(
        first_seq=header["first_seq"],
        last_seq=header["last_seq"],
        count=header["count"],
        tree_size=header["tree_size"],
        seconds=_time.perf_counter() - started,
    )


def _write_all(conn: Connection, out: IO[str], header: dict[str, Any], low: int, high: int) -> None:
    out.write(_dump(header))
    last_hash = _write_events(conn, out, low, high) if header["count"] else None
    out.write(_dump({"format": EXPORT_END, "count": header["count"], "last_hash": last_hash}))


# -- verifying ---------------------------------------------------------------


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(stream, start=1):
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


class _Header:
    """Step 1 and 4: the signed checkpoint(s) the header carries."""

    def __init__(self, obj: dict[str, Any], key: NoteVerifier, origin: str | None) -> None:
        if obj.get("format") != EXPORT_FORMAT or obj.get("version") != EXPORT_VERSION:
            raise ExportVerificationError(f"not an {EXPORT_FORMAT} v{EXPORT_VERSION} file", line=1)
        self.count = _field(obj, "count", int, 1)
        self.first, self.last = 0, -1
        if self.count:
            self.first = _field(obj, "first_seq", int, 1)
            self.last = _field(obj, "last_seq", int, 1)
            if self.first < 1 or self.last - self.first + 1 != self.count:
                raise ExportVerificationError("first_seq, last_seq and count disagree", line=1)
        try:
            self.body = open_checkpoint(_field(obj, "checkpoint", str, 1), key, origin=origin)
        except AuditVerificationError as exc:
            raise type(exc)(f"checkpoint in the export header: {exc}") from exc
        if self.count and self.last > self.body.tree_size:
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
        note = obj.get("latest_checkpoint")
        if note is None:
            return None
        if not isinstance(note, str):
            raise ExportVerificationError("latest_checkpoint is not a signed note", line=1)
        try:
            latest = open_checkpoint(note, key, origin=origin)
        except AuditVerificationError as exc:
            raise type(exc)(f"latest checkpoint in the export header: {exc}") from exc
        proof = _hex_hashes(obj.get("consistency_proof"), "consistency_proof")
        try:
            verify_consistency(
                self.body.tree_size, latest.tree_size, self.body.root_hash, latest.root_hash, proof
            )
        except ProofError as exc:
            raise ProofError(f"the latest checkpoint does not extend the export's: {exc}") from exc
        return latest.tree_size


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


def _check_event(
    obj: dict[str, Any], text: str, number: int, expected: int, prev: str | None
) -> str:
    """Step 2 for one line; returns the event hash."""
    try:
        pieces = _event_pieces(obj, number)
    except EventEncodingError as exc:
        raise ExportVerificationError(f"event is not RFC 8785 JSON: {exc}", line=number) from exc
    seq = pieces["seq"]
    if seq != expected:
        raise ExportVerificationError(
            f"expected event seq {expected}, found {seq}", line=number, seq=expected
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
    if prev is not None and pieces["prev_hash"] != prev:
        raise ExportVerificationError(
            f"event seq {seq} does not link to seq {seq - 1}: events removed, added or reordered",
            line=number,
            seq=seq,
        )
    return str(digest)


def _check_trailer(obj: dict[str, Any], number: int, count: int, last_hash: str | None) -> None:
    if obj.get("format") != EXPORT_END:
        raise ExportVerificationError("expected the trailer line", line=number)
    if obj.get("count") != count or obj.get("last_hash") != last_hash:
        raise ExportVerificationError(
            "trailer count or last hash disagrees with the events", line=number
        )


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
        header = _Header(_first_line(lines), key, origin)
        last_hash = _check_events(lines, header)
        _finish(lines, header, last_hash)
    return ExportReport(
        origin=header.body.origin,
        first_seq=header.first if header.count else None,
        last_seq=header.last if header.count else None,
        count=header.count,
        tree_size=header.body.tree_size,
        root_hash=header.body.root_hash.hex(),
        latest_tree_size=header.latest_size,
    )


def _first_line(lines: Iterator[tuple[int, str]]) -> dict[str, Any]:
    first = next(lines, None)
    if first is None:
        raise ExportTruncatedError("the file is empty")
    return _object(first[1], 1)


def _check_events(lines: Iterator[tuple[int, str]], header: _Header) -> str | None:
    """Steps 2 and 3 (leaves into the range proof)."""
    if not header.count:
        return None
    compact = CompactRange(header.first - 1, header.left)
    prev: str | None = None
    expected = header.first
    for number, text in lines:
        obj = _object(text, number)
        if obj.get("format") == EXPORT_END:
            raise ExportVerificationError(
                f"trailer after {expected - header.first} of {header.count} events: events removed",
                line=number,
            )
        prev = _check_event(obj, text, number, expected, prev)
        compact.append(event_leaf(prev))
        expected += 1
        if expected > header.last:
            break
    if expected <= header.last:
        raise ExportTruncatedError(
            f"the file ends after {expected - header.first} of {header.count} events"
        )
    try:
        verify_range(compact, header.body.tree_size, header.right, header.body.root_hash)
    except ProofError as exc:
        raise ProofError(
            f"the exported events are not the ones checkpoint {header.body.tree_size} signed: {exc}"
        ) from exc
    return prev


def _finish(lines: Iterator[tuple[int, str]], header: _Header, last_hash: str | None) -> None:
    """Step 5."""
    trailer = next(lines, None)
    if trailer is None:
        raise ExportTruncatedError("the file ends before its trailer line")
    number, text = trailer
    _check_trailer(_object(text, number), number, header.count, last_hash)
    extra = next(lines, None)
    if extra is not None:
        raise ExportVerificationError("content after the trailer line", line=extra[0])
