"""Internal: turning ``audit_events`` rows into events and export lines.

Not public API; the shapes here follow the table, which may change with the
schema version.
"""

from __future__ import annotations

import json
from typing import Any

from audit.canonical import event_body
from audit.errors import CorruptEventError
from audit.events import Event
from audit.schema import audit_events

#: Column order every reader selects, matching :func:`event_from_row`.
EVENT_COLUMNS = (
    audit_events.c.seq,
    audit_events.c.time,
    audit_events.c.actor,
    audit_events.c.action,
    audit_events.c.resource,
    audit_events.c.decision,
    audit_events.c.outcome,
    audit_events.c.details,
    audit_events.c.prev_hash,
    audit_events.c.hash,
)

#: Rows fetched per round trip when streaming (server-side cursor on PostgreSQL).
STREAM_BATCH = 5_000


def _json_column(seq: int, name: str, text: str, *, nullable: bool = False) -> Any:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        raise CorruptEventError(seq, f"column {name} is not JSON") from None
    if isinstance(value, dict) or (nullable and value is None):
        return value
    raise CorruptEventError(seq, f"column {name} is not a JSON object")


def event_from_row(row: Any) -> Event:
    """An :class:`Event` from a row selected with :data:`EVENT_COLUMNS`."""
    seq, time, actor, action, resource, decision, outcome, details, prev_hash, digest = row
    seq = int(seq)
    return Event(
        seq=seq,
        time=str(time),
        actor=_json_column(seq, "actor", actor),
        action=str(action),
        resource=_json_column(seq, "resource", resource),
        decision=_json_column(seq, "decision", decision, nullable=True),
        outcome=str(outcome),
        details=_json_column(seq, "details", details),
        prev_hash=str(prev_hash),
        hash=str(digest),
    )


def line_from_row(row: Any) -> str:
    """The export line (canonical JSON with ``hash``) straight from stored text."""
    seq, time, actor, action, resource, decision, outcome, details, prev_hash, digest = row
    return event_body(
        seq=int(seq),
        time=time,
        actor=actor,
        action=action,
        resource=resource,
        decision=decision,
        outcome=outcome,
        details=details,
        prev_hash=prev_hash,
        hash=digest,
    )
