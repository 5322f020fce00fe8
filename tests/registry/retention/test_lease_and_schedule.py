"""One runner at a time across instances, resume after a crash, the cron schedule in the
database; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from registry.auth.subject import SYSTEM
from registry.config import Settings
from registry.retention import scheduler as retention_scheduler
from registry.retention.runner import RetentionRunner, RunInProgress
from registry.services import build_services
from tests.registry.retention.conftest import RetentionApp


def _seed(app: RetentionApp, versions: int = 6) -> None:
    app.create_repo("files")
    for i in range(versions):
        app.push("files", "tool", f"1.{i}.0", f"body {i}".encode())
    app.set_rules({"rules": [{"name": "keep one", "keep_last": 1}]})


def test_only_one_runner_across_instances(retention_app: RetentionApp) -> None:
    app = retention_app
    _seed(app)
    other = build_services(
        Settings(
            data=app.settings.data,
            database_url=app.settings.database_url,
            policy_watch=False,
            checkpoint_interval_s=0,
        ),
        app.clock,
    )
    try:
        first = RetentionRunner(app.services)
        second = RetentionRunner(other)
        run_id = first.start(SYSTEM)
        assert run_id is not None
        with pytest.raises(RunInProgress, match=f"run {run_id}"):
            second.start(SYSTEM)
        assert second.resume() == []
        refused = app.client.post("/api/v1/retention/runs", headers=app.headers())
        assert refused.status_code == 409
        first.execute(run_id)
        again = second.run(SYSTEM)
        assert again is not None and again > run_id
    finally:
        other.close()
    assert app.versions("files", "tool") == ["1.5.0"]


class Crash(BaseException):
    """The process dies: nothing below catches it, nothing is cleaned up."""


def test_a_crashed_run_is_resumed_without_deciding_twice(retention_app: RetentionApp) -> None:
    app = retention_app
    _seed(app)
    # chunks of two items, one at a time: the first chunk commits, then the process dies
    crashing = RetentionRunner(app.services, workers=1, chunk=2, lease_ttl=timedelta(seconds=30))
    crashing.lease.release = lambda: None  # type: ignore[method-assign]  # a dead process
    governor = app.services.governor
    real_govern_many = governor.govern_many
    calls = {"n": 0}

    def govern_many(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            raise Crash()
        return real_govern_many(*args, **kwargs)

    governor.govern_many = govern_many  # type: ignore[method-assign]
    try:
        with pytest.raises(Crash):
            crashing.run(SYSTEM)
    finally:
        governor.govern_many = real_govern_many  # type: ignore[method-assign]
    assert len(app.versions("files", "tool")) == 4, "two deletions happened before the crash"
    status = app.scalar("SELECT status FROM retention_runs")
    assert status == "running"

    successor = RetentionRunner(app.services)
    assert successor.resume() == [], "the dead runner's lease has not expired yet"
    app.clock.advance(seconds=31)
    (resumed,) = successor.resume()
    run = app.client.get(f"/api/v1/retention/runs/{resumed}", headers=app.headers()).json()
    assert run["status"] == "finished" and run["attempts"] == 2
    assert run["deleted"] == 5 and run["kept"] == 1
    assert app.versions("files", "tool") == ["1.5.0"]
    decided = app.scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'retain' AND outcome = 'allowed'"
    )
    assert decided == 5, "each deletion decided and recorded exactly once"


def test_schedule_lives_in_the_database_with_its_time_zone(retention_app: RetentionApp) -> None:
    app = retention_app
    _seed(app, versions=3)
    app.set_rules(
        {
            "rules": [{"name": "keep one", "keep_last": 1}],
            "schedule": {"cron": "30 2 * * *", "timezone": "Europe/Berlin"},
        }
    )
    scheduler = app.services.retention
    scheduler.apply_schedule()
    row = app.scalar("SELECT next_run_time FROM apscheduler_jobs WHERE id = 'retention-run'")
    assert row is not None
    fire = datetime.fromtimestamp(row, UTC).astimezone(ZoneInfo("Europe/Berlin"))
    assert (fire.hour, fire.minute) == (2, 30)
    assert scheduler.next_run_time() == fire

    url = app.services.db.url
    before = datetime.now(UTC).replace(second=0, microsecond=0)
    first = retention_scheduler.scheduled_run(url)
    second = retention_scheduler.scheduled_run(url)
    after = datetime.now(UTC).replace(second=0, microsecond=0)
    assert first is not None
    if before == after:
        assert second is None, "two processes firing one tick start one run"
    trigger = app.scalar("SELECT trigger FROM retention_runs WHERE id = :id", id=first)
    assert trigger == "schedule"
    assert app.versions("files", "tool") == ["1.2.0"]

    app.set_rules({"rules": [{"name": "keep one", "keep_last": 1}]})
    scheduler.apply_schedule()
    gone = app.scalar("SELECT count(*) FROM apscheduler_jobs WHERE id = 'retention-run'")
    assert gone == 0
    with app.services.db.reader() as session:
        runs = session.connection().execute(text("SELECT count(*) FROM retention_runs")).scalar()
    assert runs in (1, 2)
