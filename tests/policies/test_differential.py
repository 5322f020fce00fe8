"""Every engine agrees: generated inputs get identical decisions from regopy, the
wasm module OPA compiles, and an OPA server.

Here the OPA server receives the whole input (``project_input=False``); the
embedded and wasm engines receive only the part the modules read (see
``policies._projection``), so this test also guards that projection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from policies import EmbeddedEngine, OpaServerEngine, default_policy_dir, load_bundle
from policies.inputs import Artifact, TagChange
from policies.wasm import WasmEngine
from tests.policies.conftest import OpaServer, make_input

pytestmark = pytest.mark.opa

REPOSITORIES = ["libs", "releases", "legacy", "staging"]
BINDINGS = [
    "reader",
    "writer",
    "maintainer",
    "admin",
    "owner",
    *(f"{role}:{repo}" for role in ("reader", "writer", "maintainer") for repo in REPOSITORIES),
]
TIMES = [
    "2026-01-01T00:00:00Z",
    "2026-11-28T20:00:00Z",
    "2026-11-28T21:00:00+01:00",
    "2027-06-29T23:59:59.5Z",
    "2027-07-01T00:00:00Z",
    "2025-12-31T23:00:00-05:00",
]
DIGESTS = ["sha256:" + "a" * 64, "sha256:" + "b" * 64]
# Agreement is the subject here, not speed: a busy CI machine once held one
# wasm evaluation past the 250 ms default, which denied it as "unavailable".
# Each engine's own timeout has its own tests.
AGREEMENT_TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def engines(shared_opa_server: OpaServer) -> Iterator[tuple[EmbeddedEngine, OpaServerEngine]]:
    bundle = load_bundle(default_policy_dir())
    embedded = EmbeddedEngine.from_bundle(bundle, use_opa=False, timeout_ms=AGREEMENT_TIMEOUT_MS)
    opa = OpaServerEngine(
        bundle, shared_opa_server.url, timeout_ms=AGREEMENT_TIMEOUT_MS, project_input=False
    )
    yield embedded, opa
    embedded.close()
    opa.close()


@pytest.fixture(scope="module")
def wasm(opa_binary: str) -> Iterator[WasmEngine]:
    engine = WasmEngine.from_bundle(
        load_bundle(default_policy_dir()), use_opa=False, timeout_ms=AGREEMENT_TIMEOUT_MS
    )
    yield engine
    engine.close()


labels = st.dictionaries(
    st.sampled_from(["quarantine", "legal-hold", "team"]), st.sampled_from(["true", "false", "x"])
)
artifacts = st.builds(
    Artifact,
    size=st.sampled_from([0, 10, 1_073_741_824, 1_073_741_825, 5_368_709_121]),
    labels=labels,
    tags=st.lists(st.sampled_from(["latest", "v1.0.0", "1.2.3", "release-9", "v1.2"]), max_size=3),
    licenses=st.lists(
        st.sampled_from(["MIT", "Apache-2.0", "GPL-3.0-only", "SSPL-1.0", "AGPL-3.0-or-later"]),
        max_size=3,
    ),
    purls=st.lists(st.sampled_from(["pkg:pypi/a@1", "pkg:npm/b@2"]), max_size=2),
    critical=st.integers(0, 3),
    high=st.integers(0, 3),
    vulnerability_ids=st.lists(st.sampled_from(["CVE-2026-1", "GHSA-x"]), max_size=2),
    last_pulled_at=st.none() | st.sampled_from(TIMES),
)
tags = st.none() | st.builds(
    TagChange,
    name=st.sampled_from(["latest", "v1.0.0", "release-1", "nightly"]),
    current_digest=st.none() | st.sampled_from(DIGESTS),
)
inputs = st.builds(
    make_input,
    st.sampled_from(["push", "pull", "delete", "tag", "promote", "retain", "frobnicate"]),
    roles=st.lists(st.sampled_from(BINDINGS), max_size=3).map(tuple),
    kind=st.sampled_from(["user", "robot", "anonymous"]),
    teams=st.lists(st.sampled_from(["release-engineering", "other"]), max_size=1).map(tuple),
    repository=st.sampled_from(REPOSITORIES),
    name=st.sampled_from(["openssl-compat", "requests"]),
    version=st.sampled_from(["1.0.2", "2.0"]),
    digest=st.sampled_from(DIGESTS),
    public=st.booleans(),
    artifact=artifacts,
    tag=tags,
    target=st.none() | st.sampled_from(REPOSITORIES),
    stage=st.sampled_from(["request", "content"]),
    time=st.sampled_from(TIMES),
)


def outcome(decision: Any) -> tuple[bool, tuple[str, ...], dict[str, Any]]:
    return decision.allow, decision.reasons, dict(decision.obligations)


def assert_agree(ours: Any, theirs: Any) -> None:
    assert ours.input_digest == theirs.input_digest
    assert ours.policy_revision == theirs.policy_revision
    assert not ours.details and not theirs.details, (ours.details, theirs.details)
    assert outcome(ours) == outcome(theirs)


AGREEMENT = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@AGREEMENT
@given(doc=inputs)
def test_embedded_and_opa_decide_identically(
    engines: tuple[EmbeddedEngine, OpaServerEngine], doc: dict[str, Any]
) -> None:
    embedded, opa = engines
    assert_agree(embedded.decide(doc), opa.decide(doc))


@AGREEMENT
@given(doc=inputs)
def test_wasm_and_opa_decide_identically(
    engines: tuple[EmbeddedEngine, OpaServerEngine], wasm: WasmEngine, doc: dict[str, Any]
) -> None:
    assert_agree(wasm.decide(doc), engines[1].decide(doc))


def test_generated_inputs_reach_both_outcomes(
    engines: tuple[EmbeddedEngine, OpaServerEngine],
) -> None:
    """The strategy is only useful if it produces allows as well as denies."""
    embedded, _ = engines
    quick = settings(max_examples=500, database=None, deadline=None, phases=[Phase.generate])
    find(inputs, lambda doc: embedded.decide(doc).allow, settings=quick)
    find(inputs, lambda doc: not embedded.decide(doc).allow, settings=quick)
