"""A filtered view of events for people: by actor, action, repository, outcome, time.

:func:`query_events` streams matching events in seq order using the indexed
copy columns (``actor_id``, ``repository``, ``name``, ``version``, ``action``,
``time``); :func:`render_json` and :func:`render_csv` write them out. This view
is for reading, not for proof: an auditor who needs evidence uses
:mod:`audit.export`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from sqlalchemy import Connection, Select, select

from audit._rows import EVENT_COLUMNS, STREAM_BATCH, event_from_row
from audit.chain import normalize_time
from audit.events import Event
from audit.schema import audit_events


@dataclass(frozen=True)
class EventFilter:
    """Conditions that all must hold; ``None`` means "any"."""

    actor: str | None = None
    action: str | None = None
    repository: str | None = None
    name: str | None = None
    version: str | None = None
    outcome: str | None = None
    since: datetime | str | None = None
    until: datetime | str | None = None
    after_seq: int = 0
    limit: int | None = None


def _select(flt: EventFilter) -> Select[Any]:
    c = audit_events.c
    query = select(*EVENT_COLUMNS).where(c.seq > flt.after_seq)
    exact = {
        c.actor_id: flt.actor,
        c.action: flt.action,
        c.repository: flt.repository,
        c.name: flt.name,
        c.version: flt.version,
        c.outcome: flt.outcome,
    }
    for column, value in exact.items():
        if value is not None:
            query = query.where(column == value)
    if flt.since is not None:
        query = query.where(c.time >= normalize_time(flt.since))
    if flt.until is not None:
        query = query.where(c.time <= normalize_time(flt.until))
    query = query.order_by(c.seq)
    if flt.limit is not None:
        query = query.limit(flt.limit)
    return query


def query_events(conn: Connection, flt: EventFilter | None = None) -> Iterator[Event]:
    """Events matching ``flt`` in seq order, streamed.

    For paging, pass the last seq seen as ``after_seq`` (keyset paging, stable
    while events are appended).
    """
    query = _select(flt or EventFilter()).execution_options(yield_per=STREAM_BATCH)
    for row in conn.execute(query):
        yield event_from_row(row)


def render_json(events: Iterable[Event], out: IO[str]) -> int:
    """Write a JSON array, one event per line; returns the number written."""
    count = 0
    out.write("[")
    for event in events:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(event.to_dict(), sort_keys=True, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


CSV_COLUMNS = (
    "seq",
    "time",
    "actor",
    "action",
    "outcome",
    "repository",
    "format",
    "name",
    "version",
    "digest",
    "allow",
    "reasons",
    "policy_revision",
    "hash",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """Text for a spreadsheet cell; formula-like text is defused with a quote."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_row(event: Event) -> list[str]:
    decision = event.decision or {}
    reasons = decision.get("reasons")
    values: dict[str, object] = {
        "seq": str(event.seq),
        "time": event.time,
        "actor": event.actor.get("id"),
        "action": event.action,
        "outcome": event.outcome,
        "allow": None if event.decision is None else str(bool(decision.get("allow"))).lower(),
        "reasons": "; ".join(map(str, reasons)) if isinstance(reasons, list) else None,
        "policy_revision": decision.get("policy_revision"),
        "hash": event.hash,
    }
    for key in ("repository", "format", "name", "version", "digest"):
        values[key] = event.resource.get(key)
    return [_cell(values[column]) for column in CSV_COLUMNS]


def render_csv(events: Iterable[Event], out: IO[str]) -> int:
    """Write CSV with a header row (:data:`CSV_COLUMNS`); returns rows written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for event in events:
        writer.writerow(_csv_row(event))
        count += 1
    return count
