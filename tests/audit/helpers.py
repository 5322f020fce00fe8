"""Helpers shared by the audit tests (importable by spawned worker processes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, create_engine

from audit import AuditLog, EventDraft, install_v1, sqlite_immediate
from audit.schema import APPEND_ONLY_TABLES


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine prepared the way the registry prepares it."""
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        sqlite_immediate(engine)
    return engine


def install(engine: Engine) -> None:
    with engine.begin() as conn:
        install_v1(conn)


def draft(i: int = 0, **overrides: Any) -> EventDraft:
    """A realistic decided event; ``i`` varies the artifact and details."""
    fields: dict[str, Any] = {
        "actor": {"id": f"user-{i % 3}", "kind": "user"},
        "action": "push",
        "resource": {
            "repository": "docker-local",
            "format": "oci",
            "name": "team/app",
            "version": f"1.0.{i % 5}",
            "digest": "sha256:" + f"{i:064x}",
        },
        "outcome": "allowed",
        "decision": {
            "allow": True,
            "reasons": [],
            "obligations": {},
            "decision_id": f"d-{i}",
            "policy_revision": "sha256:" + "b" * 64,
            "engine": "embedded",
            "elapsed_us": 120 + i,
            "input_digest": "sha256:" + "c" * 64,
        },
        "details": {"stage": "content", "n": i, "note": "naïve ünïcode ✓"},
    }
    fields.update(overrides)
    return EventDraft(**fields)


class StepClock:
    """A deterministic clock: each call is one millisecond later."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        self.calls = 0

    def __call__(self) -> datetime:
        self.calls += 1
        self._now += timedelta(milliseconds=1)
        return self._now


def append_n(engine: Engine, n: int, log: AuditLog | None = None, start: int = 0) -> None:
    log = log or AuditLog()
    with engine.begin() as conn:
        log.append_many(conn, [draft(i) for i in range(start, start + n)])


def bypass_triggers(conn: Connection) -> None:
    """What an attacker with database access does first (tests only)."""
    if conn.dialect.name == "sqlite":
        for table in APPEND_ONLY_TABLES:
            for op in ("update", "delete"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
    else:
        for table in APPEND_ONLY_TABLES:
            conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")


# -- worker process entry points (spawned: must be importable) ---------------


def worker_append(url: str, worker: int, count: int, per_tx: int) -> int:
    """Append ``count`` events from one process, ``per_tx`` per transaction."""
    engine = make_engine(url)
    log = AuditLog()
    done = 0
    try:
        while done < count:
            batch = [
                draft(worker * 100_000 + done + k, actor={"id": f"proc-{worker}"})
                for k in range(min(per_tx, count - done))
            ]
            with engine.begin() as conn:
                log.append_many(conn, batch)
            done += len(batch)
    finally:
        engine.dispose()
    return done
