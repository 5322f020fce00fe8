"""The one writer of the audit log: append events inside the caller's transaction.

Appending is three statements in the caller's open transaction: lock the head
row, insert the event(s), move the head. The event therefore commits or rolls
back together with the state change it records.

Serialisation of writers (so the chain never forks, skips a seq or loses an
event):

* PostgreSQL: ``SELECT ... FROM audit_head FOR UPDATE`` makes concurrent
  appenders queue on the head row; under READ COMMITTED the next one re-reads
  the row the previous one committed. (Under REPEATABLE READ or SERIALIZABLE
  PostgreSQL raises a serialization failure instead; retry the transaction.)
* SQLite: the write transaction must begin with ``BEGIN IMMEDIATE`` (see
  :func:`audit.sqlite.sqlite_immediate`), so the head is read under the write
  lock. A DEFERRED transaction that read before another writer committed gets
  ``database is locked`` on its first write: it fails, it never forks.
* On both, ``seq`` is the primary key, so even a misconfigured writer cannot
  insert a second event with the same seq.

Canonical JSON encoding of the draft's objects happens *before* the head lock
is taken (see :func:`prepare`); under the lock remain only the hashing, which
needs ``prev_hash``, and the statements (run on the DBAPI cursor, see
:mod:`audit._sql`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from audit._sql import select_head, write_events
from audit.canonical import canonical_string, canonicalize, event_body, sha256_hex
from audit.errors import AuditError, EventEncodingError, SchemaError
from audit.events import Event, EventDraft
from audit.schema import MAX_ACTION_LENGTH, MAX_OUTCOME_LENGTH

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock: the system's wall clock in UTC."""
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339, UTC, microseconds, ``Z``: ``2024-05-01T12:00:00.000001Z``.

    A fixed width makes the strings sort like the instants they name, which
    the time filters and the monotonic clamp in :meth:`AuditLog.append` use.
    """
    if moment.tzinfo is None:
        raise AuditError("the audit clock returned a naive datetime; return an aware UTC one")
    plain = moment.astimezone(UTC).replace(tzinfo=None)
    return plain.isoformat(timespec="microseconds") + "Z"


def normalize_time(value: datetime | str) -> str:
    """A bound for time filters, in the stored format (accepts RFC 3339 text)."""
    if isinstance(value, datetime):
        return format_time(value)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise AuditError(
            f"{value!r} is not an RFC 3339 time such as 2024-05-01T12:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise AuditError(f"{value!r} has no time zone: add Z or an offset")
    return format_time(parsed)


@dataclass(frozen=True)
class Head:
    """The end of the chain: last seq, its hash and time (seq 0 = empty log)."""

    seq: int
    hash: str
    time: str


@dataclass(frozen=True)
class PreparedDraft:
    """A draft already encoded as canonical JSON; cheap to seal under the lock."""

    action: str
    outcome: str
    actor_json: str
    resource_json: str
    decision_json: str
    details_json: str
    actor: dict[str, Any]
    resource: dict[str, Any]
    decision: dict[str, Any] | None
    details: dict[str, Any]


def _check_name(value: object, field: str, limit: int) -> None:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise EventEncodingError(
            f"{field} must be a non-empty string of at most {limit} characters"
        )
    canonical_string(value)


def _object(value: object, field: str) -> tuple[str, Any]:
    text, parsed = canonicalize(value)
    if not isinstance(parsed, dict):
        raise EventEncodingError(f"{field} must be a JSON object, got {type(value).__name__}")
    return text, parsed


def prepare(draft: EventDraft) -> PreparedDraft:
    """Encode a draft's objects as RFC 8785 JSON (raises :class:`EventEncodingError`).

    Call it outside the transaction (e.g. in a request thread) to shorten the
    time the writer holds the head lock; :meth:`AuditLog.append` calls it for
    plain drafts.
    """
    _check_name(draft.action, "action", MAX_ACTION_LENGTH)
    _check_name(draft.outcome, "outcome", MAX_OUTCOME_LENGTH)
    actor_json, actor = _object(dict(draft.actor), "actor")
    resource_json, resource = _object(dict(draft.resource), "resource")
    details_json, details = _object(dict(draft.details), "details")
    if draft.decision is None:
        decision_json, decision = "null", None
    else:
        decision_json, decision = _object(dict(draft.decision), "decision")
    return PreparedDraft(
        action=draft.action,
        outcome=draft.outcome,
        actor_json=actor_json,
        resource_json=resource_json,
        decision_json=decision_json,
        details_json=details_json,
        actor=actor,
        resource=resource,
        decision=decision,
        details=details,
    )


def _text(mapping: dict[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    return value if isinstance(value, str) else None


class AuditLog:
    """Appends events to the hash chain; the only code that writes events.

    ``clock`` is injectable for tests. Times never decrease along the chain: a
    wall clock stepped backwards repeats the last time instead of reordering.
    """

    def __init__(self, *, clock: Clock = utc_now) -> None:
        self._clock = clock

    def append(self, conn: Connection, draft: EventDraft | PreparedDraft) -> Event:
        """Seal ``draft`` as the next event, inside ``conn``'s open transaction."""
        return self.append_many(conn, (draft,))[0]

    def append_many(
        self, conn: Connection, drafts: Iterable[EventDraft | PreparedDraft]
    ) -> list[Event]:
        """Seal several drafts as consecutive events with one head lock and one insert.

        This is the cheap path for a caller that records several events in one
        transaction (a batch import, a retention sweep, a group commit).
        """
        prepared = [d if isinstance(d, PreparedDraft) else prepare(d) for d in drafts]
        if not prepared:
            return []
        _require_transaction(conn)
        head = read_head(conn, lock=True)
        events, rows = self._seal(prepared, head)
        last = events[-1]
        write_events(
            conn, rows, {"last_seq": last.seq, "last_hash": last.hash, "last_time": last.time}
        )
        return events

    def head(self, conn: Connection) -> Head:
        """The current end of the chain, without locking it."""
        return read_head(conn, lock=False)

    def _seal(
        self, prepared: Sequence[PreparedDraft], head: Head
    ) -> tuple[list[Event], list[dict[str, Any]]]:
        events: list[Event] = []
        rows: list[dict[str, Any]] = []
        seq, prev_hash, last_time = head.seq, head.hash, head.time
        for item in prepared:
            seq += 1
            last_time = max(format_time(self._clock()), last_time)
            digest = sha256_hex(
                event_body(
                    seq=seq,
                    time=last_time,
                    actor=item.actor_json,
                    action=item.action,
                    resource=item.resource_json,
                    decision=item.decision_json,
                    outcome=item.outcome,
                    details=item.details_json,
                    prev_hash=prev_hash,
                )
            )
            events.append(_event(item, seq, last_time, prev_hash, digest))
            rows.append(_row(item, seq, last_time, prev_hash, digest))
            prev_hash = digest
        return events, rows


def _require_transaction(conn: Connection) -> None:
    if not conn.in_transaction():
        raise AuditError(
            "AuditLog.append needs the caller's open transaction so the event commits "
            "with the change it records: use `with engine.begin() as conn:`"
        )


def read_head(conn: Connection, *, lock: bool) -> Head:
    """The chain head; with ``lock``, locked until the transaction ends (PostgreSQL)."""
    row = select_head(conn, lock=lock)
    if row is None:
        raise SchemaError("audit_head has no row: run audit.schema.install_v1 (the migration)")
    return Head(seq=int(row[0]), hash=str(row[1]), time=str(row[2]))


def _event(item: PreparedDraft, seq: int, time: str, prev_hash: str, digest: str) -> Event:
    return Event(
        seq=seq,
        time=time,
        actor=item.actor,
        action=item.action,
        resource=item.resource,
        decision=item.decision,
        outcome=item.outcome,
        details=item.details,
        prev_hash=prev_hash,
        hash=digest,
    )


def _row(item: PreparedDraft, seq: int, time: str, prev_hash: str, digest: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "time": time,
        "actor": item.actor_json,
        "action": item.action,
        "resource": item.resource_json,
        "decision": item.decision_json,
        "outcome": item.outcome,
        "details": item.details_json,
        "prev_hash": prev_hash,
        "hash": digest,
        "actor_id": _text(item.actor, "id"),
        "repository": _text(item.resource, "repository"),
        "name": _text(item.resource, "name"),
        "version": _text(item.resource, "version"),
    }
