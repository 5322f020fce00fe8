"""The filtered view for people, and its JSON and CSV renderings."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import Engine

from audit import AuditLog, EventFilter, query_events, render_csv, render_json
from tests.audit.helpers import StepClock, draft


@pytest.fixture
def mixed(engine: Engine) -> Engine:
    log = AuditLog(clock=StepClock())
    drafts = [draft(i) for i in range(30)]
    drafts += [draft(100, action="pull", outcome="denied", actor={"id": "=cmd|' /C calc'!A0"})]
    drafts += [draft(101, resource={"repository": "pypi-local", "name": "pkg", "version": "2"})]
    with engine.begin() as conn:
        log.append_many(conn, drafts)
    return engine


@pytest.mark.parametrize(
    ("flt", "seqs"),
    [
        (EventFilter(), list(range(1, 33))),
        (EventFilter(actor="user-1"), [2, 5, 8, 11, 14, 17, 20, 23, 26, 29]),
        (EventFilter(action="pull"), [31]),
        (EventFilter(outcome="denied"), [31]),
        (EventFilter(repository="pypi-local"), [32]),
        (
            EventFilter(repository="docker-local", name="team/app", version="1.0.3"),
            [4, 9, 14, 19, 24, 29],
        ),
        (
            EventFilter(since="2024-05-01T12:00:00.010Z", until="2024-05-01T12:00:00.012Z"),
            [10, 11, 12],
        ),
        (EventFilter(after_seq=28, limit=2), [29, 30]),
        (EventFilter(action="push", outcome="denied"), []),
    ],
)
def test_filters(mixed: Engine, flt: EventFilter, seqs: list[int]) -> None:
    with mixed.connect() as conn:
        assert [e.seq for e in query_events(conn, flt)] == seqs


def test_json_rendering_round_trips(mixed: Engine) -> None:
    out = io.StringIO()
    with mixed.connect() as conn:
        events = list(query_events(conn, EventFilter(limit=3)))
    assert render_json(events, out) == 3
    assert json.loads(out.getvalue()) == [e.to_dict() for e in events]
    empty = io.StringIO()
    render_json([], empty)
    assert json.loads(empty.getvalue()) == []


def test_csv_rendering_defuses_formulas(mixed: Engine) -> None:
    out = io.StringIO()
    with mixed.connect() as conn:
        count = render_csv(query_events(conn, EventFilter(after_seq=30)), out)
    assert count == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[0]["actor"] == "'=cmd|' /C calc'!A0"
    assert rows[0]["allow"] == "true" and rows[0]["outcome"] == "denied"
    assert rows[1]["repository"] == "pypi-local" and rows[1]["seq"] == "32"
    assert len(rows[0]["hash"]) == 64
