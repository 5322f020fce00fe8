"""The embedded engine: every starter rule, concurrency, and failing closed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from policies import (
    ENGINE_UNAVAILABLE,
    INVALID_INPUT,
    NO_DECISION,
    EmbeddedEngine,
    PolicyEngine,
    default_policy_dir,
    load_bundle,
)
from policies.inputs import Artifact, TagChange, input_digest
from policies.validation import validate_bundle
from tests.policies.conftest import make_input

SEC_1234 = "SEC-1234: pinned by the billing system until its migration"


@pytest.fixture(scope="module")
def engine() -> Iterator[EmbeddedEngine]:
    starter = EmbeddedEngine.from_bundle(load_bundle(default_policy_dir()), use_opa=False)
    yield starter
    starter.close()


EngineFor = Callable[..., PolicyEngine]


@pytest.fixture
def engine_for(tmp_path: Path) -> EngineFor:
    """Builds this module's engine over a one-file policy (another engine's tests, too:
    test_wasm_engine runs the engine-contract tests below with its own ``engine_for``).
    """

    def build(source: str, **options: Any) -> EmbeddedEngine:
        (tmp_path / "policy.rego").write_text(source)
        return EmbeddedEngine(validate_bundle(load_bundle(tmp_path), use_opa=False), **options)

    return build


ALLOWED: list[tuple[str, dict[str, Any]]] = [
    ("reader pulls", make_input("pull")),
    (
        "anyone pulls from a public repository",
        make_input("pull", roles=(), kind="anonymous", public=True),
    ),
    (
        "writer pushes clean content",
        make_input(
            "push",
            roles=("writer:libs",),
            stage="content",
            artifact=Artifact(size=1000, licenses=["MIT", "Apache-2.0"]),
        ),
    ),
    (
        "writer sets a new release tag",
        make_input("tag", roles=("writer:libs",), tag=TagChange("v1.0.0", None)),
    ),
    (
        "writer moves a mutable tag",
        make_input("tag", roles=("writer:libs",), tag=TagChange("latest", "sha256:" + "b" * 64)),
    ),
    ("maintainer deletes", make_input("delete", roles=("maintainer:libs",))),
    ("maintainer promotes", make_input("promote", roles=("maintainer",), target="releases")),
    ("admin does everything", make_input("retain", roles=("admin",))),
    (
        "team binding grants promote",
        make_input(
            "promote", roles=("reader:libs",), teams=("release-engineering",), target="releases"
        ),
    ),
    (
        "retention of an idle artifact",
        make_input(
            "retain",
            roles=("maintainer:libs",),
            artifact=Artifact(last_pulled_at="2026-01-01T00:00:00Z"),
        ),
    ),
    ("high findings under a critical threshold", make_input("pull", artifact=Artifact(high=9))),
]

DENIED: list[tuple[str, dict[str, Any], str]] = [
    (
        "reader may not push",
        make_input("push"),
        "subject alice holds no role that grants push on repository libs",
    ),
    (
        "scoped role does not reach other repositories",
        make_input("pull", repository="other"),
        "subject alice holds no role that grants pull on repository other",
    ),
    (
        "writer may not delete",
        make_input("delete", roles=("writer:libs",)),
        "subject alice holds no role that grants delete on repository libs",
    ),
    (
        "anonymous may not pull from a private repository",
        make_input("pull", roles=(), kind="anonymous"),
        "anonymous subjects may only pull from public repositories, not pull on libs",
    ),
    (
        "anonymous may not push even to a public repository",
        make_input("push", roles=("admin",), kind="anonymous", public=True),
        "anonymous subjects may only pull from public repositories, not push on libs",
    ),
    (
        "license on the deny list",
        make_input(
            "push",
            roles=("writer:libs",),
            stage="content",
            artifact=Artifact(licenses=["MIT", "GPL-3.0-only"]),
        ),
        "license GPL-3.0-only is on the deny list",
    ),
    (
        "critical findings block pull",
        make_input("pull", artifact=Artifact(critical=2)),
        "pull refused: 2 vulnerability finding(s) at or above severity critical"
        " and no exemption covers the artifact",
    ),
    (
        "expired exemption no longer covers",
        make_input(
            "pull",
            roles=("reader",),
            repository="legacy",
            name="openssl-compat",
            version="1.0.2",
            artifact=Artifact(critical=1),
            time="2027-07-01T00:00:00Z",
        ),
        "pull refused: 1 vulnerability finding(s)",
    ),
    (
        "quarantine forbids pull",
        make_input("pull", artifact=Artifact(labels={"quarantine": "malware"})),
        "artifact is quarantined (label quarantine) and cannot be pulled",
    ),
    (
        "legal hold forbids delete",
        make_input("delete", roles=("admin",), artifact=Artifact(labels={"legal-hold": "case-7"})),
        "artifact is under legal hold (label legal-hold) and cannot be deleted",
    ),
    (
        "legal hold vetoes retention",
        make_input("retain", roles=("admin",), artifact=Artifact(labels={"legal-hold": "case-7"})),
        "artifact is under legal hold (label legal-hold); retention keeps it",
    ),
    (
        "recent pull vetoes retention",
        make_input(
            "retain", roles=("admin",), artifact=Artifact(last_pulled_at="2026-11-27T00:00:00Z")
        ),
        "artifact was pulled within the last 30 days; retention keeps it",
    ),
    (
        "release tag vetoes retention",
        make_input("retain", roles=("admin",), artifact=Artifact(tags=["v2.0.0"])),
        "artifact carries immutable tag v2.0.0; retention keeps releases",
    ),
    (
        "immutable tag never moves",
        make_input("tag", roles=("admin",), tag=TagChange("v1.0.0", "sha256:" + "b" * 64)),
        "tag v1.0.0 is immutable and already points to sha256:" + "b" * 64,
    ),
    (
        "repository size limit",
        make_input(
            "push", roles=("admin",), repository="releases", artifact=Artifact(size=1_073_741_825)
        ),
        "artifact size 1073741825 bytes exceeds the 1073741824-byte limit of repository releases",
    ),
    (
        "promote needs promote on the target",
        make_input("promote", roles=("reader:libs", "writer:releases"), target="releases"),
        "subject alice holds no role that grants promote on repository releases",
    ),
    (
        "unknown action",
        make_input("frobnicate", roles=("admin",)),
        "action frobnicate is not governed by these policies",
    ),
]


@pytest.mark.parametrize(("case", "doc"), ALLOWED, ids=[case for case, _ in ALLOWED])
def test_starter_policy_allows(engine: EmbeddedEngine, case: str, doc: dict[str, Any]) -> None:
    decision = engine.decide(doc)
    assert decision.allow, (case, decision.reasons, decision.details)
    assert decision.reasons == ()


@pytest.mark.parametrize(("case", "doc", "reason"), DENIED, ids=[case for case, *_ in DENIED])
def test_starter_policy_denies_with_reason(
    engine: EmbeddedEngine, case: str, doc: dict[str, Any], reason: str
) -> None:
    decision = engine.decide(doc)
    assert not decision.allow, case
    assert any(given.startswith(reason) for given in decision.reasons), decision.reasons


def test_exempted_pull_is_allowed_with_an_obligation(engine: EmbeddedEngine) -> None:
    doc = make_input(
        "pull",
        roles=("reader",),
        repository="legacy",
        name="openssl-compat",
        version="1.0.2",
        artifact=Artifact(critical=1),
    )
    decision = engine.decide(doc)
    assert decision.allow
    assert decision.obligations == {"exemptions": [SEC_1234]}


def test_decision_carries_the_evidence(engine: EmbeddedEngine) -> None:
    doc = make_input("pull")
    decision = engine.decide(doc)
    assert decision.engine == "embedded"
    assert decision.policy_revision == load_bundle(default_policy_dir()).revision
    assert decision.input_digest == input_digest(doc)
    assert decision.elapsed_us > 0
    other = engine.decide(doc)
    assert other.decision_id != decision.decision_id
    assert set(decision.to_json()) == {
        "allow",
        "reasons",
        "obligations",
        "decision_id",
        "policy_revision",
        "engine",
        "elapsed_us",
        "input_digest",
    }


def test_concurrent_decisions_match_sequential_ones(engine: EmbeddedEngine) -> None:
    docs = [doc for _, doc in ALLOWED] + [doc for _, doc, _ in DENIED]
    expected = [(d.allow, d.reasons) for d in map(engine.decide, docs)]
    mismatches: list[tuple[int, Any]] = []

    def worker(offset: int) -> None:
        for round_ in range(15):
            index = (offset + round_) % len(docs)
            decision = engine.decide(docs[index])
            if (decision.allow, decision.reasons) != expected[index]:
                mismatches.append((index, decision))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []


ALLOW = '{"allow": true, "reasons": [], "obligations": {}}'
PULL_ALLOWED = f'package registry\n\ndecision := {ALLOW} if input.action == "pull"\n\n'

CONFLICT = (
    PULL_ALLOWED
    + 'decision := {"allow": true, "reasons": ["a"]} if input.action == "push"\n\n'
    + 'decision := {"allow": true, "reasons": ["b"]} if input.action == "push"\n'
)

SLOW = """package registry

decision := {"allow": true, "reasons": [], "obligations": {}} if input.action != "slow"

decision := {"allow": count(work) > 0, "reasons": [], "obligations": {}} if input.action == "slow"

work := [x | some i in numbers.range(1, 250); some j in numbers.range(1, 250); x := i * j]
"""


def test_timeout_denies_on_time(engine_for: EngineFor) -> None:
    slow = engine_for(SLOW, timeout_ms=50)
    try:
        started = time.monotonic()
        decision = slow.decide({"action": "slow"})
        waited = time.monotonic() - started
        assert not decision.allow
        assert decision.reasons == (ENGINE_UNAVAILABLE,)
        assert "took over 50 ms" in decision.details["error"]
        assert waited < 1.0  # the error above says which; this bound only tolerates a busy CI
        assert slow.decide({"action": "pull"}).allow  # other decisions still work
    finally:
        slow.close()


def test_runtime_error_fails_closed(engine_for: EngineFor) -> None:
    broken = engine_for(CONFLICT)
    try:
        decision = broken.decide({"action": "push"})
        assert (decision.allow, decision.reasons) == (False, (ENGINE_UNAVAILABLE,))
        assert decision.details["error"]
    finally:
        broken.close()


def test_undefined_decision_is_no_decision(engine_for: EngineFor) -> None:
    engine = engine_for(PULL_ALLOWED)
    try:
        decision = engine.decide({"action": "push"})
        assert (decision.allow, decision.reasons) == (False, (NO_DECISION,))
    finally:
        engine.close()


def test_malformed_decision_is_no_decision(engine_for: EngineFor) -> None:
    malformed = PULL_ALLOWED + 'decision := {"allow": "yes"} if input.action == "push"\n'
    engine = engine_for(malformed)
    try:
        decision = engine.decide({"action": "push"})
        assert (decision.allow, decision.reasons) == (False, (NO_DECISION,))
        assert "'allow' must be true or false" in decision.details["error"]
    finally:
        engine.close()


def test_non_json_input_is_denied_not_raised(engine: EmbeddedEngine) -> None:
    doc = make_input("pull")
    doc["artifact"]["labels"] = {"when": object()}
    decision = engine.decide(doc)
    assert (decision.allow, decision.reasons) == (False, (INVALID_INPUT,))
    assert "not JSON" in decision.details["error"]


def test_closed_engine_denies(engine_for: EngineFor) -> None:
    engine = engine_for('package registry\n\ndecision := {"allow": true}\n')
    engine.close()
    decision = engine.decide(make_input("pull"))
    assert (decision.allow, decision.reasons) == (False, (ENGINE_UNAVAILABLE,))


def test_decide_many_matches_decide_one_by_one(engine_for: EngineFor) -> None:
    engine = engine_for(PULL_ALLOWED)
    try:
        docs: list[dict[str, Any]] = [
            {"action": "pull"},
            {"action": "push"},
            {"action": "pull", "x": float("nan")},  # not JSON: refused before evaluation
            {"action": "pull", "n": 1},
        ]
        many = engine.decide_many(docs)
        one_by_one = [engine.decide(doc) for doc in docs]
        assert [(d.allow, d.reasons) for d in many] == [(d.allow, d.reasons) for d in one_by_one]
        assert [d.allow for d in many] == [True, False, False, True]
        assert [d.input_digest for d in many] == [d.input_digest for d in one_by_one]
        assert len({d.decision_id for d in many}) == len(docs)
        assert engine.decide_many([]) == []
    finally:
        engine.close()


# SLOW takes ~160 ms here: too close to this batch's 3 x 50 ms wait, so on a
# fast machine the pull behind it was sometimes decided after all. ~6x the work.
SLOWER = SLOW.replace("numbers.range(1, 250)", "numbers.range(1, 600)")


def test_decide_many_denies_what_a_slow_evaluation_holds_up(engine_for: EngineFor) -> None:
    slow = engine_for(SLOWER, timeout_ms=50)
    try:
        started = time.monotonic()
        decisions = slow.decide_many([{"action": "pull"}, {"action": "slow"}, {"action": "pull"}])
        waited = time.monotonic() - started
        assert decisions[0].allow
        assert [d.allow for d in decisions[1:]] == [False, False]
        assert all(d.reasons == (ENGINE_UNAVAILABLE,) for d in decisions[1:])
        assert "took over 50 ms" in decisions[1].details["error"] or (
            "not decided in time" in decisions[1].details["error"]
        )
        assert "not decided in time" in decisions[2].details["error"]
        assert waited < 1.5  # three timeouts at most, with room for a busy CI machine
    finally:
        slow.close()
