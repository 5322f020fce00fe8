"""One retention runner (and one garbage collector) at a time, across every process.

A lease is a row in ``retention_lease``: whoever holds it unexpired may run.
Taking it is one conditional UPDATE (free, expired, or already ours), so two
processes racing for it cannot both win on SQLite or PostgreSQL. The holder
renews it from a heartbeat thread; a holder that dies stops renewing, and once
the lease expires the next runner takes it and resumes the interrupted run
(whose state is in the database).

Times come from the injected clock, so tests can expire a lease by moving time.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from registry.db import Database
from registry.retention.models import RetentionLease

RETENTION = "retention"
GC = "gc"
DEFAULT_TTL = timedelta(minutes=2)

log = structlog.get_logger("arbiter.retention.lease")
_LEASES: Table = RetentionLease.__table__  # type: ignore[attr-defined]


def new_holder() -> str:
    """A name for this runner: host process plus a random part (several per process in tests)."""
    return f"pid{os.getpid()}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class LeaseState:
    holder: str
    run_id: int | None
    expires_at: datetime | None


class LeaseLost(RuntimeError):
    """The lease expired or was taken over while this runner still worked."""


class Lease:
    """A named lease over one database; thread-safe."""

    def __init__(
        self,
        db: Database,
        name: str,
        clock: Callable[[], datetime],
        *,
        ttl: timedelta = DEFAULT_TTL,
        holder: str | None = None,
    ) -> None:
        self.db = db
        self.name = name
        self.clock = clock
        self.ttl = ttl
        self.holder = holder or new_holder()

    def acquire(self, run_id: int | None = None) -> bool:
        """Take the lease if it is free, expired or ours; True when we hold it now."""
        now = self.clock()
        with self.db.writer() as session:
            conn = session.connection()
            if (
                conn.execute(select(_LEASES.c.name).where(_LEASES.c.name == self.name)).first()
                is None
            ):
                try:
                    with conn.begin_nested():
                        conn.execute(insert(_LEASES).values(name=self.name, holder=""))
                except IntegrityError:
                    pass  # another process created it first
            taken = conn.execute(
                update(_LEASES)
                .where(
                    _LEASES.c.name == self.name,
                    (_LEASES.c.holder == "")
                    | (_LEASES.c.holder == self.holder)
                    | (_LEASES.c.expires_at.is_(None))
                    | (_LEASES.c.expires_at < now),
                )
                .values(holder=self.holder, run_id=run_id, expires_at=now + self.ttl)
            )
            return taken.rowcount == 1

    def renew(self, run_id: int | None = None) -> bool:
        """Extend our lease (and note the run it serves); False when it is no longer ours."""
        values: dict[str, object] = {"expires_at": self.clock() + self.ttl}
        if run_id is not None:
            values["run_id"] = run_id
        with self.db.writer() as session:
            renewed = session.connection().execute(
                update(_LEASES)
                .where(_LEASES.c.name == self.name, _LEASES.c.holder == self.holder)
                .values(**values)
            )
            return renewed.rowcount == 1

    def release(self) -> None:
        with self.db.writer() as session:
            session.connection().execute(
                update(_LEASES)
                .where(_LEASES.c.name == self.name, _LEASES.c.holder == self.holder)
                .values(holder="", expires_at=None, run_id=None)
            )

    def state(self) -> LeaseState | None:
        with self.db.reader() as session:
            row = (
                session.connection()
                .execute(select(_LEASES).where(_LEASES.c.name == self.name))
                .first()
            )
        if row is None:
            return None
        return LeaseState(holder=row.holder, run_id=row.run_id, expires_at=row.expires_at)

    @contextmanager
    def heartbeat(
        self, run_id: int | None = None, interval: float | None = None
    ) -> Iterator[threading.Event]:
        """Renew every third of the TTL while the block runs.

        Yields an event that is set when a renewal failed: the worker checks it
        between items and stops, because another runner may have taken over.
        """
        lost = threading.Event()
        stop = threading.Event()
        period = interval if interval is not None else max(self.ttl.total_seconds() / 3, 0.05)

        def beat() -> None:
            while not stop.wait(period):
                try:
                    if not self.renew(run_id):
                        lost.set()
                        return
                except Exception as error:  # a database hiccup: try again next beat
                    log.warning("lease renewal failed", lease=self.name, error=str(error))

        thread = threading.Thread(target=beat, name=f"lease-{self.name}", daemon=True)
        thread.start()
        try:
            yield lost
        finally:
            stop.set()
            thread.join()
