"""The bulk road a retention pass takes is the one road, in bulk: the same facts, one
decision and one audit event per action, changes and events committed together."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from sqlmodel import Session

from registry.errors import Conflict
from registry.governance import RETAIN, Action, RequestContext, Resource
from registry.governance.facts import gather, gather_many
from registry.retention.decide import RETENTION_SUBJECT
from tests.registry.retention.conftest import RetentionApp


def _seed(app: RetentionApp) -> list[Action]:
    app.create_repo("files")
    app.create_repo("other")
    for i in range(4):
        app.push("files", "tool", f"1.{i}", f"tool {i}".encode())
    app.push("other", "lib", "2.0", b"lib")
    app.label("files", "tool", "1.1", "legal-hold", "case-7")
    versions = [("files", "tool", f"1.{i}") for i in range(4)] + [("other", "lib", "2.0")]
    versions += [("files", "tool", "9.9"), ("files", "missing", "1")]
    actions = [
        Action(verb=RETAIN, resource=Resource(repository=r, format="generic", name=n, version=v))
        for r, n, v in versions
    ]
    return [*actions, Action(verb=RETAIN, resource=Resource(repository="files"))]


def test_gather_many_returns_what_gather_returns(retention_app: RetentionApp) -> None:
    app = retention_app
    actions = _seed(app)
    with app.services.db.reader() as session:
        assert gather_many(session, actions) == [gather(session, a) for a in actions]


def test_govern_many_records_every_decision_with_its_outcome(
    retention_app: RetentionApp,
) -> None:
    app = retention_app
    actions = _seed(app)[:5]
    before = app.scalar("SELECT count(*) FROM audit_events")
    applied: list[int] = []

    def apply(_session: Session, allowed: Sequence[int]) -> dict[int, str]:
        applied.extend(allowed)
        return {allowed[0]: "could not"}

    governed = app.services.governor.govern_many(
        RETENTION_SUBJECT, actions, RequestContext(), apply
    )
    outcomes = [g.outcome for g in governed]
    assert outcomes == ["failed", "denied", "allowed", "allowed", "allowed"]
    assert governed[0].error == "could not"
    assert "legal hold" in governed[1].decision.reasons[0]
    assert applied == [0, 2, 3, 4]
    after = app.scalar("SELECT count(*) FROM audit_events")
    assert after - before == 5, "one event per action"

    def broken(_session: Session, _allowed: Sequence[int]) -> Any:
        raise Conflict("the whole chunk failed")

    with pytest.raises(Conflict):
        app.services.governor.govern_many(RETENTION_SUBJECT, actions, RequestContext(), broken)
    failed = app.scalar("SELECT count(*) FROM audit_events WHERE outcome = 'failed'")
    assert app.scalar("SELECT count(*) FROM audit_events") - after == 5
    assert failed == 1 + 4, "the allowed ones are recorded failed, the denied one denied"
