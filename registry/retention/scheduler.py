"""Scheduled retention: APScheduler 3 with its job store in the registry's database.

Each serving process runs a :class:`RetentionScheduler`:

* the cron job lives in ``apscheduler_jobs`` (an ``SQLAlchemyJobStore`` on the
  registry's own write engine, table created by migration ``0004``), so every
  process shares one schedule and one next-run time;
* a local *sync* job (every :data:`SYNC_INTERVAL_S`) brings that job in line
  with the current rule set's ``schedule`` (cron expression and time zone)
  when the rule set changed, and resumes any run a crashed process left
  behind;
* APScheduler 3 does not coordinate processes, so two may fire the same tick:
  the run's ``schedule_key`` (the tick's minute) is unique and the retention
  lease admits one runner, so exactly one run happens.

The stored job names :func:`scheduled_run` and the database URL; the function
finds this process's services by that URL (every process sharing the
database registered its own).
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime

import structlog
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from registry.auth.subject import Subject
from registry.retention import rulesets
from registry.retention.runner import RetentionRunner, RunInProgress
from registry.services import Services

JOB_ID = "retention-run"
SYNC_JOB_ID = "retention-sync"
SHARED_STORE = "shared"
SYNC_INTERVAL_S = 60
SCHEDULER = Subject(id="retention-scheduler", kind="robot", roles=("admin",))

log = structlog.get_logger("arbiter.retention.scheduler")
_live: dict[str, Services] = {}
_live_lock = threading.Lock()


def scheduled_run(database_url: str) -> int | None:
    """The stored job: one run for this tick, unless another process has it."""
    with _live_lock:
        services = _live.get(database_url)
    if services is None:
        log.warning("scheduled retention run found no services for its database")
        return None
    tick = datetime.now(UTC).replace(second=0, microsecond=0)
    try:
        return RetentionRunner(services).run(
            SCHEDULER, trigger="schedule", schedule_key=f"schedule:{tick.isoformat()}"
        )
    except RunInProgress:
        log.info("scheduled retention run skipped: another run is in progress")
        return None


class RetentionScheduler:
    """This process's scheduler for retention; start once, shut down on close."""

    def __init__(self, services: Services, *, sync_interval_s: float = SYNC_INTERVAL_S) -> None:
        self.services = services
        self.sync_interval_s = sync_interval_s
        self.scheduler = BackgroundScheduler(
            timezone="UTC",
            jobstores={
                "default": MemoryJobStore(),
                SHARED_STORE: SQLAlchemyJobStore(
                    engine=services.db.write_engine, tablename="apscheduler_jobs"
                ),
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        )
        self._applied: int | None = None
        self._stopping = False

    def start(self) -> None:
        with _live_lock:
            _live[self.services.db.url] = self.services
        self.scheduler.start()
        self.scheduler.add_job(
            self.sync,
            "interval",
            seconds=self.sync_interval_s,
            id=SYNC_JOB_ID,
            next_run_time=datetime.now(UTC),
        )

    def shutdown(self) -> None:
        # Not wait=True: APScheduler 3 holds its job-store lock while it waits
        # for running jobs, and a running sync() takes that lock to add or
        # remove the schedule, so waiting would deadlock. A sync still running
        # finds the scheduler stopped and its errors are logged, not raised.
        self._stopping = True
        self.scheduler.shutdown(wait=False)
        with _live_lock:
            if _live.get(self.services.db.url) is self.services:
                del _live[self.services.db.url]

    def sync(self) -> None:
        """Follow the rule set's schedule; resume runs a crashed process left behind."""
        if self._stopping:
            return
        try:
            self.apply_schedule()
            RetentionRunner(self.services).resume()
        except Exception:  # a bad moment for the database: the next sync tries again
            log.exception("retention sync failed")

    def apply_schedule(self) -> None:
        stored = rulesets.current(self.services.db)
        if stored.version == self._applied:
            return
        schedule = stored.rule_set.schedule
        if schedule is not None and schedule.enabled:
            self.scheduler.add_job(
                scheduled_run,
                trigger=schedule.trigger(),
                args=[self.services.db.url],
                id=JOB_ID,
                jobstore=SHARED_STORE,
                replace_existing=True,
            )
            log.info("retention schedule set", cron=schedule.cron, timezone=schedule.timezone)
        else:
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(JOB_ID, jobstore=SHARED_STORE)
        self._applied = stored.version

    def next_run_time(self) -> datetime | None:
        job = self.scheduler.get_job(JOB_ID, jobstore=SHARED_STORE)
        return None if job is None else job.next_run_time
