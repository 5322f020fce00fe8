"""Reload and watch: a good change goes live, a bad one is refused and the old one stays."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from policies import PolicyLoadError, PolicyPoint, load_bundle
from tests.policies.conftest import ALLOW_ALL, DENY_ALL, make_input

BROKEN = 'package registry\n\ndecision := {"allow": true\n'


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "policy"
    shutil.copytree(DENY_ALL, target)
    return target


@pytest.fixture
def point(policy_dir: Path) -> Iterator[PolicyPoint]:
    holder = PolicyPoint(kind="embedded", policy_dir=policy_dir)
    yield holder
    holder.close()


def switch_to_allow_all(policy_dir: Path) -> None:
    (policy_dir / "deny_all.rego").write_text((ALLOW_ALL / "allow_all.rego").read_text())


def test_reload_puts_the_new_revision_in_force(point: PolicyPoint, policy_dir: Path) -> None:
    before = point.revision
    assert not point.decide(make_input()).allow
    switch_to_allow_all(policy_dir)
    after = point.reload()
    assert after != before
    assert after == load_bundle(policy_dir).revision
    decision = point.decide(make_input())
    assert decision.allow
    assert decision.policy_revision == after


def test_reload_without_change_keeps_the_engine(point: PolicyPoint) -> None:
    assert point.reload() == point.revision


def test_bad_policy_is_refused_and_the_last_good_stays(
    point: PolicyPoint, policy_dir: Path
) -> None:
    good = point.revision
    (policy_dir / "deny_all.rego").write_text(BROKEN)
    with pytest.raises(PolicyLoadError) as refused:
        point.reload()
    problem = refused.value.problems[0]
    assert (problem.file, problem.line) == ("deny_all.rego", 3)
    assert "deny_all.rego:3" in str(refused.value)
    assert point.revision == good
    assert point.last_error is refused.value
    decision = point.decide(make_input())
    assert decision.policy_revision == good
    assert decision.reasons == ("deny-all test policy refuses pull",)


def test_bad_initial_policy_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "x.rego").write_text(BROKEN)
    with pytest.raises(PolicyLoadError, match=r"x\.rego:3"):
        PolicyPoint(policy_dir=tmp_path)


def test_watch_reloads_on_change_and_reports_refusals(point: PolicyPoint, policy_dir: Path) -> None:
    reloaded: list[str] = []
    refused: list[PolicyLoadError] = []
    changed = threading.Event()

    def on_reload(revision: str) -> None:
        reloaded.append(revision)
        changed.set()

    def on_error(error: PolicyLoadError) -> None:
        refused.append(error)
        changed.set()

    point.start_watching(on_reload=on_reload, on_error=on_error)
    switch_to_allow_all(policy_dir)
    assert changed.wait(timeout=10), "the watcher did not notice the change"
    assert reloaded == [point.revision]
    assert point.decide(make_input()).allow

    changed.clear()
    (policy_dir / "deny_all.rego").write_text(BROKEN)
    assert changed.wait(timeout=10), "the watcher did not notice the broken change"
    assert len(refused) == 1
    assert point.revision == reloaded[0]
    point.stop_watching()
