"""The OPA-server engine against a real ``opa run --server``: same answers, fails closed."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from policies import (
    ENGINE_UNAVAILABLE,
    NO_DECISION,
    OpaServerEngine,
    PolicyLoadError,
    PolicyPoint,
    default_policy_dir,
    load_bundle,
)
from policies.opa_server import POLICY_PREFIX, WRAPPER_ID
from tests.policies.conftest import ALLOW_ALL, DENY_ALL, OpaServer, make_input, start_opa
from tests.policies.test_embedded import ALLOWED, DENIED

pytestmark = pytest.mark.opa


@pytest.fixture(scope="module")
def starter(shared_opa_server: OpaServer) -> Iterator[OpaServerEngine]:
    engine = OpaServerEngine(load_bundle(default_policy_dir()), shared_opa_server.url)
    yield engine
    engine.close()


def policy_ids(url: str) -> set[str]:
    return {policy["id"] for policy in httpx.get(f"{url}/v1/policies").json()["result"]}


@pytest.mark.parametrize(("case", "doc"), ALLOWED, ids=[case for case, _ in ALLOWED])
def test_starter_policy_allows(starter: OpaServerEngine, case: str, doc: dict[str, Any]) -> None:
    decision = starter.decide(doc)
    assert decision.allow, (case, decision.reasons, decision.details)
    assert decision.engine == "opa"


@pytest.mark.parametrize(("case", "doc", "reason"), DENIED, ids=[case for case, *_ in DENIED])
def test_starter_policy_denies(
    starter: OpaServerEngine, case: str, doc: dict[str, Any], reason: str
) -> None:
    decision = starter.decide(doc)
    assert not decision.allow, case
    assert any(given.startswith(reason) for given in decision.reasons), decision.reasons


def test_published_bundle_is_checked_by_revision(
    starter: OpaServerEngine, shared_opa_server: OpaServer
) -> None:
    bundle = load_bundle(default_policy_dir())
    assert starter.served_revision() == bundle.revision
    expected = {POLICY_PREFIX + path for path in bundle.modules} | {WRAPPER_ID}
    assert policy_ids(shared_opa_server.url) == expected
    assert starter.decide(make_input()).policy_revision == bundle.revision


def test_foreign_revision_is_refused(opa_server: OpaServer) -> None:
    first = OpaServerEngine(load_bundle(DENY_ALL), opa_server.url)
    second = OpaServerEngine(load_bundle(ALLOW_ALL), opa_server.url)
    try:
        assert second.decide(make_input()).allow
        stale = first.decide(make_input())
        assert (stale.allow, stale.reasons) == (False, (ENGINE_UNAVAILABLE,))
        assert "serves revision" in stale.details["error"]
        assert policy_ids(opa_server.url) == {POLICY_PREFIX + "allow_all.rego", WRAPPER_ID}
    finally:
        first.close()
        second.close()


def test_killed_server_means_deny(opa_server: OpaServer) -> None:
    engine = OpaServerEngine(load_bundle(ALLOW_ALL), opa_server.url, timeout_ms=2000)
    try:
        assert engine.decide(make_input()).allow
        assert [d.allow for d in engine.decide_many([make_input(), make_input()])] == [True, True]
        opa_server.stop()
        for _ in range(3):
            started = time.monotonic()
            decision = engine.decide(make_input())
            assert (decision.allow, decision.reasons) == (False, (ENGINE_UNAVAILABLE,))
            assert time.monotonic() - started < 1.0
        assert "ConnectionRefusedError" in decision.details["error"]
    finally:
        engine.close()


def test_keep_alive_connection_survives_an_opa_restart(opa_binary: str) -> None:
    """A connection the old server held is stale after a restart: the query goes again."""
    server = start_opa(opa_binary)
    port = int(server.url.rsplit(":", 1)[1])
    engine = OpaServerEngine(load_bundle(ALLOW_ALL), server.url)
    try:
        assert engine.decide(make_input()).allow  # opens this thread's connection
        server.stop()
        server = start_opa(opa_binary, port)
        engine.publish()
        decision = engine.decide(make_input())
        assert decision.allow, decision.details
    finally:
        engine.close()
        server.stop()


def test_restarted_server_without_our_policies_means_deny(opa_server: OpaServer) -> None:
    engine = OpaServerEngine(load_bundle(ALLOW_ALL), opa_server.url)
    try:
        httpx.delete(f"{opa_server.url}/v1/policies/{WRAPPER_ID}").raise_for_status()
        decision = engine.decide(make_input())
        assert (decision.allow, decision.reasons) == (False, (ENGINE_UNAVAILABLE,))
    finally:
        engine.close()


def test_undefined_decision_is_no_decision(opa_server: OpaServer, tmp_path: Path) -> None:
    (tmp_path / "x.rego").write_text(
        'package registry\n\ndecision := {"allow": true} if input.action == "pull"\n'
    )
    engine = OpaServerEngine(load_bundle(tmp_path), opa_server.url)
    try:
        decision = engine.decide(make_input("push"))
        assert (decision.allow, decision.reasons) == (False, (NO_DECISION,))
    finally:
        engine.close()


def test_unreachable_server_refuses_to_load(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="cannot publish"):
        OpaServerEngine(load_bundle(ALLOW_ALL), "http://127.0.0.1:9")


def test_opa_refusal_names_file_and_line(opa_server: OpaServer, tmp_path: Path) -> None:
    (tmp_path / "x.rego").write_text('package registry\n\ndecision := {"allow": true\n')
    with pytest.raises(PolicyLoadError) as refused:
        OpaServerEngine(load_bundle(tmp_path), opa_server.url)
    problem = refused.value.problems[0]
    assert problem.file == "x.rego"
    assert problem.line >= 3


def test_point_reload_on_opa_keeps_last_good(opa_server: OpaServer, tmp_path: Path) -> None:
    policy_dir = tmp_path / "policy"
    shutil.copytree(DENY_ALL, policy_dir)
    point = PolicyPoint(kind="opa", policy_dir=policy_dir, opa_url=opa_server.url)
    try:
        good = point.revision
        (policy_dir / "deny_all.rego").write_text("package registry\n\ndecision := {\n")
        with pytest.raises(PolicyLoadError):
            point.reload()
        assert point.revision == good
        assert point.decide(make_input()).reasons == ("deny-all test policy refuses pull",)
        (policy_dir / "deny_all.rego").write_text((ALLOW_ALL / "allow_all.rego").read_text())
        assert point.reload() != good
        assert point.decide(make_input()).allow
    finally:
        point.close()


def test_publish_works_from_inside_an_event_loop(opa_server: OpaServer) -> None:
    async def publish_in_loop() -> str | None:
        engine = OpaServerEngine(load_bundle(ALLOW_ALL), opa_server.url)
        try:
            return engine.served_revision()
        finally:
            engine.close()

    assert asyncio.run(publish_in_loop()) == load_bundle(ALLOW_ALL).revision
