"""Lineage of one artifact version, folded from its events and rendered three ways."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine

from audit import AuditLog, EventDraft, Lineage, build_lineage
from audit.lineage import lineage_json
from tests.audit.helpers import StepClock

ARTIFACT = {"repository": "docker-dev", "format": "oci", "name": 'team/"app"', "version": "1.2.3"}


def ev(action: str, actor: str = "alice", outcome: str = "allowed", **details: Any) -> EventDraft:
    resource = {**ARTIFACT, "digest": "sha256:" + "a" * 64}
    decision = {
        "allow": outcome != "denied",
        "reasons": ["critical CVE"] if outcome == "denied" else [],
    }
    return EventDraft(actor={"id": actor, "kind": "user"}, action=action, resource=resource,
                      outcome=outcome, decision=decision, details=details)  # fmt: skip


def lifecycle() -> list[EventDraft]:
    provenance = {"pipeline": "gitlab-4711", "commit": "deadbeef", "source": "git.example/app"}
    return [
        ev("push", "ci-bot", stage="request", provenance=provenance),
        ev("push", "ci-bot", stage="content", provenance=provenance, derived_from="debian:12"),
        ev("push", "mallory", outcome="denied", stage="content"),
        ev(
            "analyse",
            "scanner",
            sbom={"format": "cyclonedx", "purls": ["pkg:pypi/a@1", "pkg:pypi/b@2"]},
            findings={"critical": 0, "high": 1},
        ),
        ev("tag", tag="latest"),
        ev("tag", tag="stable", previous_digest="sha256:" + "b" * 64),
        ev("pull", "bob", input={"subject": {"teams": ["payments"]}}),
        ev("pull", "bob"),
        ev("pull", "carol", input={"subject": {"teams": ["payments", "ops"]}}),
        ev("pull", "dave", listing=True),
        ev("pull", "eve", outcome="denied"),
        ev("label", labels={"quarantine": True}, reason="CVE-2024-1"),
        ev("label", labels={"quarantine": False}),
        ev("promote", target={"repository": "docker-prod"}),
        ev("retain", "retention", outcome="denied", rule="keep-90d"),
        ev("delete", "admin", reason="superseded"),
    ]


@pytest.fixture
def lineage(engine: Engine) -> Lineage:
    other = EventDraft(actor={"id": "x"}, action="push", outcome="allowed",
                       resource={**ARTIFACT, "version": "9.9.9"})  # fmt: skip
    with engine.begin() as conn:
        AuditLog(clock=StepClock()).append_many(conn, [other, *lifecycle()])
    with engine.connect() as conn:
        return build_lineage(conn, ARTIFACT["repository"], ARTIFACT["name"], ARTIFACT["version"])


def test_lifecycle_steps(lineage: Lineage) -> None:
    kinds = [s.kind for s in lineage.steps]
    assert kinds == ["pushed", "analysed", "tagged", "retagged", "quarantined", "released",
                     "promoted", "vetoed", "deleted"]  # fmt: skip
    pushed = lineage.steps[0]
    assert (pushed.actor, pushed.seq) == ("ci-bot", 3)
    assert pushed.facts["provenance"]["pipeline"] == "gitlab-4711"
    assert lineage.steps[1].facts["findings"] == {"critical": 0, "high": 1}
    assert lineage.status == "deleted"
    assert lineage.events == 16


def test_attempts_are_kept_apart(lineage: Lineage) -> None:
    assert [(a.actor, a.kind) for a in lineage.attempts] == [
        ("mallory", "denied"),
        ("eve", "denied"),
    ]
    assert lineage.attempts[0].facts["reasons"] == ["critical CVE"]


def test_pulls(lineage: Lineage) -> None:
    pulls = lineage.pulls
    assert pulls.count == 3
    assert pulls.by_subject == {"bob": 2, "carol": 1}
    assert pulls.by_team == {"payments": 2, "ops": 1}
    assert pulls.first is not None and pulls.last is not None and pulls.first < pulls.last


def test_relations_and_provenance(lineage: Lineage) -> None:
    relations = {(r.kind, r.target) for r in lineage.relations}
    assert relations == {
        ("built-from", "git.example/app@deadbeef"),
        ("derived-from", "debian:12"),
        ("depends-on", "pkg:pypi/a@1"),
        ("depends-on", "pkg:pypi/b@2"),
        ("promoted-to", 'docker-prod/team/"app"@1.2.3'),
    }
    assert lineage.provenance["commit"] == "deadbeef"


def test_json_rendering(lineage: Lineage) -> None:
    data = json.loads(lineage_json(lineage))
    assert data["artifact"] == {
        "repository": "docker-dev",
        "name": 'team/"app"',
        "version": "1.2.3",
    }
    assert data["pulls"]["count"] == 3
    assert data["relations"][0]["kind"] == "built-from"


def test_mermaid_rendering(lineage: Lineage) -> None:
    text = lineage.to_mermaid()
    assert text.startswith("flowchart LR\n")
    assert 'artifact["docker-dev/team/#quot;app#quot;@1.2.3"]' in text
    assert "artifact --> s0" in text and "s0 --> s1" in text
    assert "artifact -->|built-from| r0" in text
    assert "pulled 3x" in text
    assert '"app"' not in text  # quotes are escaped


def test_dot_rendering(lineage: Lineage) -> None:
    text = lineage.to_dot()
    assert text.startswith("digraph lineage {") and text.rstrip().endswith("}")
    assert '"artifact" [label="docker-dev/team/\\"app\\"@1.2.3"];' in text
    assert '"artifact" -> "r0" [label="built-from"];' in text


def test_unknown_artifact_has_an_empty_lineage(engine: Engine) -> None:
    with engine.connect() as conn:
        lineage = build_lineage(conn, "nope", "nothing", "0")
    assert (lineage.status, lineage.events, lineage.steps) == ("absent", 0, ())
    assert lineage.to_mermaid().count("\n") == 2
