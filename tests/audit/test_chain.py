"""Appending: hashing definition, transaction semantics, clock, errors."""

from __future__ import annotations

import hashlib
import itertools
import re
from datetime import UTC, datetime, timedelta

import pytest
import rfc8785
from sqlalchemy import Engine, select, text

from audit import GENESIS_HASH, AuditLog, EventDraft, prepare
from audit._rows import EVENT_COLUMNS, event_from_row
from audit.errors import AuditError, EventEncodingError
from audit.schema import audit_events
from tests.audit.helpers import StepClock, draft

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _stored(engine: Engine) -> list:  # type: ignore[type-arg]
    with engine.connect() as conn:
        rows = conn.execute(select(*EVENT_COLUMNS).order_by(audit_events.c.seq))
        return [event_from_row(r) for r in rows]


def test_hash_is_sha256_of_rfc8785_event_without_hash(engine: Engine, log: AuditLog) -> None:
    with engine.begin() as conn:
        first = log.append(conn, draft(1))
        second = log.append(conn, draft(2, decision=None))
    assert first.seq == 1 and second.seq == 2
    assert first.prev_hash == GENESIS_HASH == "0" * 64
    assert second.prev_hash == first.hash
    for event in (first, second):
        body = {k: v for k, v in event.to_dict().items() if k != "hash"}
        assert event.hash == hashlib.sha256(rfc8785.dumps(body)).hexdigest()
        assert event.computed_hash() == event.hash
        assert TIME.match(event.time)
    assert _stored(engine) == [first, second]
    assert first.to_json() == rfc8785.dumps(first.to_dict()).decode()


def test_event_commits_and_rolls_back_with_the_callers_transaction(
    engine: Engine, log: AuditLog
) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), engine.begin() as conn:
        log.append(conn, draft(1))
        raise Boom
    assert _stored(engine) == []
    with engine.begin() as conn:
        event = log.append(conn, draft(2))
    assert event.seq == 1  # the rolled-back append left no gap
    assert [e.seq for e in _stored(engine)] == [1]


def test_append_outside_a_transaction_is_refused(engine: Engine, log: AuditLog) -> None:
    with engine.connect() as conn, pytest.raises(AuditError, match="open transaction"):
        log.append(conn, draft(1))


def test_append_many_seals_consecutive_events(engine: Engine, log: AuditLog) -> None:
    with engine.begin() as conn:
        events = log.append_many(conn, [draft(i) for i in range(50)])
        assert log.append_many(conn, []) == []
    assert [e.seq for e in events] == list(range(1, 51))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert _stored(engine) == events
    with engine.connect() as conn:
        head = log.head(conn)
    assert (head.seq, head.hash, head.time) == (50, events[-1].hash, events[-1].time)


def test_clock_is_injected_and_time_never_goes_backwards(engine: Engine) -> None:
    moments = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=s) for s in (10, 5, 20)]
    log = AuditLog(clock=iter(moments).__next__)
    with engine.begin() as conn:
        events = log.append_many(conn, [draft(i) for i in range(3)])
    assert [e.time for e in events] == [
        "2024-01-01T00:00:10.000000Z",
        "2024-01-01T00:00:10.000000Z",  # the stepped-back clock repeats, never reorders
        "2024-01-01T00:00:20.000000Z",
    ]


def test_naive_clock_is_refused(engine: Engine) -> None:
    log = AuditLog(clock=lambda: datetime(2024, 1, 1))
    with engine.begin() as conn, pytest.raises(AuditError, match="naive"):
        log.append(conn, draft(1))


def test_stored_copies_do_not_alias_caller_objects(engine: Engine, log: AuditLog) -> None:
    details = {"tags": ("a", "b")}
    with engine.begin() as conn:
        event = log.append(conn, draft(1, details=details))
    assert event.details == {"tags": ["a", "b"]}
    assert _stored(engine)[0] == event


def test_index_columns_are_filled(engine: Engine, log: AuditLog) -> None:
    with engine.begin() as conn:
        log.append(conn, draft(3))
    with engine.connect() as conn:
        row = conn.execute(
            select(
                audit_events.c.actor_id,
                audit_events.c.repository,
                audit_events.c.name,
                audit_events.c.version,
            )
        ).one()
    assert tuple(row) == ("user-0", "docker-local", "team/app", "1.0.3")


@pytest.mark.parametrize(
    "bad",
    [
        {"details": {"n": 2**60}},
        {"details": {"f": float("inf")}},
        {"actor": {"id": "\ud800"}},
        {"action": ""},
        {"action": "x" * 65},
        {"outcome": 3},
        {"decision": {"x": object()}},
    ],
)
def test_unencodable_drafts_raise_before_touching_the_database(
    engine: Engine, log: AuditLog, bad: dict[str, object]
) -> None:
    with pytest.raises(EventEncodingError):
        prepare(draft(1, **bad))
    with engine.begin() as conn:
        with pytest.raises(EventEncodingError):
            log.append(conn, draft(1, **bad))
        assert conn.execute(text("SELECT last_seq FROM audit_head")).scalar() == 0


def test_prepared_drafts_append_like_plain_ones(engine: Engine) -> None:
    clock = StepClock()
    log = AuditLog(clock=clock)
    prepared = prepare(draft(9))
    with engine.begin() as conn:
        a = log.append(conn, prepared)
        b = log.append(conn, EventDraft(**{**draft(9).__dict__}))
    assert a.computed_hash() == a.hash and b.computed_hash() == b.hash
    assert a.details == b.details
