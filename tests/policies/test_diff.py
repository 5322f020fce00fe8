"""Impact analysis: replaying recorded decisions against a candidate policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policies import (
    EmbeddedEngine,
    PolicyInputError,
    RecordedDecision,
    default_policy_dir,
    diff_decisions,
    load_bundle,
    read_recorded,
)
from policies.inputs import Artifact
from tests.policies.conftest import make_input


def recorded(doc: dict[str, object], engine: EmbeddedEngine) -> dict[str, object]:
    """An audit event as the registry records it: decision plus the input in details."""
    decision = engine.decide(doc)
    return {
        "seq": 1,
        "action": doc["action"],
        "decision": decision.to_json(),
        "details": {"stage": "request", "input": doc},
    }


@pytest.fixture
def candidate_dir(policy_copy: Path) -> Path:
    """The starter policies with MIT added to the license deny list."""
    data_path = policy_copy / "data.json"
    data = json.loads(data_path.read_text())
    data["arbiter"]["licenses"]["deny"].append("MIT")
    data_path.write_text(json.dumps(data))
    return policy_copy


def test_candidate_changes_are_reported_per_action_and_reason(
    candidate_dir: Path, tmp_path: Path
) -> None:
    current = EmbeddedEngine.from_bundle(load_bundle(default_policy_dir()), use_opa=False)
    candidate = EmbeddedEngine.from_bundle(load_bundle(candidate_dir), use_opa=False)
    mit_push = make_input("push", roles=("writer:libs",), artifact=Artifact(licenses=["MIT"]))
    gpl_push = make_input(
        "push", roles=("writer:libs",), artifact=Artifact(licenses=["GPL-3.0-only"])
    )
    events = [recorded(doc, current) for doc in (mit_push, gpl_push, make_input("pull"))]
    events.append({"seq": 9, "action": "user.create", "decision": None, "details": {}})
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join(json.dumps(event) for event in events) + "\n")
    try:
        records = read_recorded(log)
        assert len(records) == 3
        report = diff_decisions(records, candidate)
    finally:
        current.close()
        candidate.close()
    assert report.replayed == 3
    assert [change.kind for change in report.changes] == ["newly denied"]
    assert report.by_action["push"].newly_denied == 1
    assert report.by_action["push"].replayed == 2
    assert report.by_action["pull"].changed == 0
    assert report.reasons_added == {"license MIT is on the deny list": 1}
    assert report.to_json()["changed"] == 1


def test_last_n_keeps_the_newest(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    lines = [
        {
            "decision": {"allow": True, "reasons": [], "decision_id": str(n)},
            "details": {"input": {}},
        }
        for n in range(5)
    ]
    log.write_text("\n".join(json.dumps(line) for line in lines))
    assert [r.decision_id for r in read_recorded(log, last=2)] == ["3", "4"]


def test_broken_event_line_is_named(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text('{"decision": null}\nnot json\n')
    with pytest.raises(PolicyInputError, match=r"events\.jsonl:2"):
        read_recorded(log)


def test_unchanged_policy_reports_nothing() -> None:
    engine = EmbeddedEngine.from_bundle(load_bundle(default_policy_dir()), use_opa=False)
    try:
        doc = make_input("pull")
        record = RecordedDecision.from_event(recorded(doc, engine))
        assert record is not None
        report = diff_decisions([record], engine)
    finally:
        engine.close()
    assert report.changes == ()
    assert report.by_action["pull"].replayed == 1
