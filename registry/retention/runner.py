"""A retention run: plan, decide every deletion through the policy, purge, report.

1. **Lease.** Only the holder of the ``retention`` lease runs (see
   :mod:`registry.retention.lease`); a second caller gets 409.
2. **Resume.** A run left ``running`` by a dead holder is finished first: its
   state is its items, so the pending ones are decided and nothing is decided
   twice (a deletion and its item update share one transaction).
3. **Plan.** The live versions are read in bulk and the engine selects the
   deletions; a plan that would empty a repository needs ``confirm``. The
   run and every item (pending deletions, versions rules kept) are written
   in one transaction with the ``retention.run.start`` event.
4. **Decide.** Each pending item is a ``retain`` action through
   :meth:`Governor.govern`, with the rule in the event's details and the
   run's facts in ``input.retention``. Items are decided on a small thread
   pool; the governor's group committer folds the concurrent commits into
   shared transactions, and every decision is still its own audit event.
   Allowed: the version moves to the trash. Denied: a veto, with reasons.
   OCI manifests that another manifest names as a child are decided after
   the others, so an index deleted in this run frees its children.
5. **Purge.** Trash entries past their recovery period are purged, each a
   ``retain`` action too (phase ``purge``; a legal hold set since vetoes it).
6. **Report.** The report is built from the items and stored with the run,
   with the ``retention.run.finish`` event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, Table, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from registry.auth.subject import Subject
from registry.errors import Conflict, NotFound
from registry.retention import engine, facts, inventory, reports, rulesets, trash
from registry.retention.decide import OPEN_VERDICTS, RETENTION_SUBJECT, Decider, Outcome
from registry.retention.lease import DEFAULT_TTL, RETENTION, Lease, LeaseLost
from registry.retention.models import (
    ERROR,
    FAILED,
    FINISHED,
    KEPT,
    PENDING,
    PURGE_PENDING,
    PURGE_VETOED,
    PURGED,
    RUNNING,
    SKIPPED,
    VETOED,
    RetentionItem,
    RetentionRun,
    RetentionTrash,
)
from registry.retention.reports import Preview
from registry.retention.restore import restore_version
from registry.retention.rules import RuleSet
from registry.services import Services

# Decisions are CPU-bound, and the embedded engine builds each input with
# ~130 short C calls that each give up the GIL: beside a second busy thread
# every one waits for the GIL's switch interval (a convoy). One worker,
# deciding while nothing else runs, measured fastest (2 workers: 25 % slower).
DEFAULT_WORKERS = 1
DEFAULT_CHUNK = 512  # items decided together and committed in one unit
MAX_ATTEMPTS = 3
FLUSH_EVERY = 500

log = structlog.get_logger("arbiter.retention")


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


_RUNS, _ITEMS, _TRASH = _table(RetentionRun), _table(RetentionItem), _table(RetentionTrash)


class RunInProgress(Conflict):
    """Another runner holds the lease."""


class ConfirmationRequired(Conflict):
    """The plan would delete every version of a repository and nobody confirmed it."""

    def __init__(self, repositories: Sequence[str]) -> None:
        self.repositories = list(repositories)
        names = ", ".join(repositories)
        super().__init__(
            f"the rule set would delete every version in {names}; check the preview, "
            "then run again with --confirm (API: confirm=true)"
        )


class RetentionRunner:
    """Previews, runs, resumes and restores; one per caller, the lease makes it exclusive."""

    def __init__(
        self,
        services: Services,
        *,
        workers: int = DEFAULT_WORKERS,
        chunk: int = DEFAULT_CHUNK,
        lease_ttl: timedelta = DEFAULT_TTL,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.services = services
        self.db = services.db
        self.governor = services.governor
        self.clock = clock or services.governor.clock
        self.workers = workers
        self.chunk = chunk
        self.lease = Lease(self.db, RETENTION, self.clock, ttl=lease_ttl)

    # -- preview ---------------------------------------------------------------

    def preview(self, repository: str | None = None) -> Preview:
        stored = rulesets.current(self.db)
        now = self.clock()
        return Preview(
            stored.version, repository, self._plan(stored.rule_set, repository, now), now
        )

    def _plan(self, rule_set: RuleSet, repository: str | None, now: datetime) -> engine.Plan:
        with self.db.reader() as session:
            conn = session.connection()
            if repository is not None:
                _require_repository(conn, repository)
            versions = inventory.load(conn, repository)
        return engine.plan(versions, rule_set, now)

    # -- runs ------------------------------------------------------------------

    def run(
        self,
        requested_by: Subject,
        *,
        repository: str | None = None,
        confirm: bool = False,
        trigger: str = "manual",
        schedule_key: str | None = None,
    ) -> int | None:
        """Run now, to the end; returns the run id (None: this tick already ran elsewhere)."""
        run_id = self.start(
            requested_by,
            repository=repository,
            confirm=confirm,
            trigger=trigger,
            schedule_key=schedule_key,
        )
        if run_id is not None:
            self.execute(run_id)
        return run_id

    def start(
        self,
        requested_by: Subject,
        *,
        repository: str | None = None,
        confirm: bool = False,
        trigger: str = "manual",
        schedule_key: str | None = None,
    ) -> int | None:
        """Take the lease, finish interrupted runs, plan and record a new run.

        On success the lease stays held for :meth:`execute` (which releases
        it), so a caller may answer its client first and carry the run out
        on another thread.
        """
        if not self.lease.acquire():
            state = self.lease.state()
            raise RunInProgress(
                "a retention run is in progress"
                + (f" (run {state.run_id})" if state and state.run_id else "")
                + "; wait for it to finish (GET /api/v1/retention/runs)"
            )
        try:
            self._resume_interrupted()
            stored = rulesets.current(self.db)
            now = self.clock()
            started = time.perf_counter()
            plan = self._plan(stored.rule_set, repository, now)
            planned = time.perf_counter()
            everything = plan.deletes_everything()
            if everything and not confirm:
                raise ConfirmationRequired(everything)
            try:
                run_id = self._create(
                    requested_by, stored.version, plan, repository, confirm, trigger, schedule_key
                )
            except IntegrityError:
                if schedule_key is None:
                    raise
                self.lease.release()
                return None  # another process started this tick's run
            self.lease.renew(run_id)  # others can now tell which run holds the lease
            log.info(
                "retention run planned",
                run=run_id,
                versions=plan.versions,
                deletions=len(plan.deletions),
                plan_s=round(planned - started, 2),
                record_s=round(time.perf_counter() - planned, 2),
            )
            return run_id
        except BaseException:
            self.lease.release()
            raise

    def execute(self, run_id: int) -> None:
        """Carry out a started run, then give the lease back."""
        try:
            self._execute(run_id)
        finally:
            self.lease.release()

    def resume(self) -> list[int]:
        """Finish runs a dead runner left behind, if no live runner holds the lease."""
        if not self.lease.acquire():
            return []
        try:
            return self._resume_interrupted()
        finally:
            self.lease.release()

    def _resume_interrupted(self) -> list[int]:
        with self.db.reader() as session:
            ids = (
                session.connection()
                .execute(select(_RUNS.c.id).where(_RUNS.c.status == RUNNING).order_by(_RUNS.c.id))
                .scalars()
                .all()
            )
        for run_id in ids:
            log.info("resuming retention run", run=run_id)
            with self.db.writer() as session:
                session.connection().execute(
                    update(_RUNS)
                    .where(_RUNS.c.id == run_id)
                    .values(attempts=_RUNS.c.attempts + 1, holder=self.lease.holder)
                )
            self._execute(run_id)
        return list(ids)

    def _create(
        self,
        requested_by: Subject,
        rule_set_version: int,
        plan: engine.Plan,
        repository: str | None,
        confirm: bool,
        trigger: str,
        schedule_key: str | None,
    ) -> int:
        now = self.clock()

        def apply(session: Session) -> int:
            conn = session.connection()
            inserted = conn.execute(
                insert(_RUNS).values(
                    status=RUNNING,
                    trigger=trigger,
                    schedule_key=schedule_key,
                    repository=repository,
                    rule_set_version=rule_set_version,
                    requested_by=requested_by.id,
                    confirmed=confirm,
                    holder=self.lease.holder,
                    attempts=1,
                    deleted=0,
                    vetoed=0,
                    kept=0,
                    purged=0,
                    errors=0,
                    bytes_deleted=0,
                    bytes_purged=0,
                    error="",
                    created_at=now,
                    started_at=now,
                )
            ).inserted_primary_key
            assert inserted is not None
            run_id = int(inserted[0])
            rows = [_item(run_id, v, PENDING) for v in plan.deletions]
            for chunk in _chunks(rows, 2000):
                conn.execute(insert(_ITEMS), chunk)
            # What rules kept needs no decision: it waits in the report, not as items.
            kept = [reports.entry(_item(run_id, v, KEPT)) for v in plan.kept]
            conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(report={"kept": kept}))
            return int(run_id)

        details = {
            "repository": repository,
            "rule_set_version": rule_set_version,
            "trigger": trigger,
            "confirmed": confirm,
            "versions": plan.versions,
            "planned_deletions": len(plan.deletions),
            "kept_by_rule": len(plan.kept),
            "bytes_planned": plan.bytes_reclaimed,
        }
        return self.governor.record(
            requested_by, "retention.run.start", {"retention": "run"}, apply, details
        )

    def _execute(self, run_id: int) -> None:
        """Decide what is pending, purge what is due, finish; safe to call again after a crash."""
        run = self._run_row(run_id)
        self.lease.renew(run_id)
        try:
            started = time.perf_counter()
            with self.lease.heartbeat(run_id) as lost:
                self._decide_pending(run, lost.is_set)
                decided = time.perf_counter()
                self._purge_due(run, lost.is_set)
                purged = time.perf_counter()
                if lost.is_set():
                    raise LeaseLost(f"lost the retention lease during run {run_id}")
            self._finish(run_id)
            log.info(
                "retention run finished",
                run=run_id,
                decide_s=round(decided - started, 2),
                purge_s=round(purged - decided, 2),
                report_s=round(time.perf_counter() - purged, 2),
            )
        except LeaseLost:
            log.warning("retention run interrupted: lease lost", run=run_id)
            raise
        except Exception as error:
            self._fail(run_id, error)
            raise

    # -- deciding and purging -------------------------------------------------------

    def _decide_pending(self, run: dict[str, Any], lost: Callable[[], bool]) -> None:
        items = self._items(run["id"], PENDING)
        if not items:
            return
        with self.db.reader() as session:
            children = (
                facts.child_manifests(session.connection())
                if any(item["format"] == "oci" for item in items)
                else set()
            )
        first = [i for i in items if (i["repository"], i["package"], i["version"]) not in children]
        later = [i for i in items if (i["repository"], i["package"], i["version"]) in children]
        recovery = timedelta(
            days=rulesets.at_version(self.db, run["rule_set_version"]).rule_set.recovery_days
        )
        decider = Decider(self.governor, run)
        for wave in (first, later):
            self._in_pool(wave, lambda chunk: decider.delete(chunk, self.clock(), recovery), lost)

    def _purge_due(self, run: dict[str, Any], lost: Callable[[], bool]) -> None:
        now = self.clock()
        with self.db.writer() as session:
            conn = session.connection()
            query = select(_TRASH).where(_TRASH.c.purge_after <= now)
            if run["repository"] is not None:
                query = query.where(_TRASH.c.repository == run["repository"])
            due = conn.execute(query).mappings().all()
            known = set(
                conn.execute(
                    select(_ITEMS.c.trash_id).where(
                        _ITEMS.c.run_id == run["id"], _ITEMS.c.verdict.in_(_PURGE_VERDICTS)
                    )
                ).scalars()
            )
            rows = [_purge_item(run["id"], row) for row in due if row["id"] not in known]
            for chunk in _chunks(rows, 2000):
                conn.execute(insert(_ITEMS), chunk)
        decider = Decider(self.governor, run)
        items = self._items(run["id"], PURGE_PENDING)
        self._in_pool(items, lambda chunk: decider.purge(chunk, self.clock()), lost)

    def _in_pool(
        self,
        items: Sequence[dict[str, Any]],
        handle: Callable[[list[dict[str, Any]]], list[Outcome]],
        lost: Callable[[], bool],
    ) -> None:
        """Handle ``items`` in chunks on the pool; record vetoes, skips and errors in batches."""
        if not items:
            return
        buffered: list[Outcome] = []

        def guarded(chunk: list[dict[str, Any]]) -> list[Outcome]:
            return [] if lost() else handle(chunk)

        with ThreadPoolExecutor(self.workers, thread_name_prefix="retention") as pool:
            for outcomes in pool.map(guarded, _chunks(list(items), self.chunk)):
                buffered += [o for o in outcomes if o.verdict in _RECORDED]
                if len(buffered) >= FLUSH_EVERY:
                    self._record_outcomes(buffered)
                    buffered = []
        self._record_outcomes(buffered)

    def _record_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        now = self.clock()
        rows = [
            {"item": o.item_id, "outcome": o.verdict, "why": list(o.reasons), "at": now}
            for o in outcomes
        ]
        with self.db.writer() as session:
            session.connection().execute(_RECORD_OUTCOME, rows)

    # -- finishing -----------------------------------------------------------------

    def _finish(self, run_id: int) -> None:
        run = self._run_row(run_id)
        with self.db.reader() as session:
            items = (
                session.connection()
                .execute(select(_ITEMS).where(_ITEMS.c.run_id == run_id).order_by(_ITEMS.c.id))
                .mappings()
                .all()
            )
        report = reports.build(run, items, kept=(run["report"] or {}).get("kept", []))
        report["policy_revision"] = self.services.policy.revision
        summary = report["summary"]
        now = self.clock()
        report["finished_at"] = now.isoformat()

        def apply(session: Session) -> None:
            session.connection().execute(
                update(_RUNS)
                .where(_RUNS.c.id == run_id)
                .values(
                    status=FINISHED,
                    finished_at=now,
                    deleted=summary["deleted"],
                    vetoed=summary["vetoed"],
                    kept=summary["kept"],
                    purged=summary["purged"],
                    errors=summary["errors"],
                    bytes_deleted=summary["bytes_deleted"],
                    bytes_purged=summary["bytes_purged"],
                    report=report,
                )
            )

        self.governor.record(
            RETENTION_SUBJECT,
            "retention.run.finish",
            {"retention": "run"},
            apply,
            {"run_id": run_id, **summary, "policy_revision": report["policy_revision"]},
        )

    def _fail(self, run_id: int, error: Exception) -> None:
        """Record the error; the run stays resumable until it failed :data:`MAX_ATTEMPTS` times.

        An error mid-run (the database went away, the process is stopping)
        is an interruption like a crash; only a run that keeps failing is
        given up, so a deterministic fault cannot loop for ever.
        """
        message = f"{type(error).__name__}: {error}"[:2000]
        log.error("retention run interrupted by an error", run=run_id, error=message)
        try:
            with self.db.writer() as session:
                conn = session.connection()
                attempts = conn.execute(
                    select(_RUNS.c.attempts).where(_RUNS.c.id == run_id)
                ).scalar_one()
                values: dict[str, Any] = {"error": message}
                if attempts >= MAX_ATTEMPTS:
                    values.update(status=FAILED, finished_at=self.clock())
                conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(**values))
        except Exception:  # the database itself is gone: the next runner resumes
            log.exception("could not record the retention run's error", run=run_id)

    # -- restore -------------------------------------------------------------------

    def restore(
        self, subject: Subject, repository: str, package: str, version: str
    ) -> trash.Restored:
        """Bring a soft-deleted version back (audited as ``retention.restore``)."""
        return restore_version(self.governor, subject, repository, package, version)

    # -- rows ----------------------------------------------------------------------

    def _run_row(self, run_id: int) -> dict[str, Any]:
        with self.db.reader() as session:
            row = (
                session.connection()
                .execute(select(_RUNS).where(_RUNS.c.id == run_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"retention run {run_id} does not exist")
        return dict(row)

    def _items(self, run_id: int, verdict: str) -> list[dict[str, Any]]:
        with self.db.reader() as session:
            rows = (
                session.connection()
                .execute(
                    select(_ITEMS)
                    .where(_ITEMS.c.run_id == run_id, _ITEMS.c.verdict == verdict)
                    .order_by(_ITEMS.c.id)
                )
                .mappings()
                .all()
            )
        return [dict(row) for row in rows]


_PURGE_VERDICTS = (PURGE_PENDING, PURGED, PURGE_VETOED)
_RECORDED = (VETOED, PURGE_VETOED, SKIPPED, ERROR)
_RECORD_OUTCOME = (
    update(_ITEMS)
    .where(
        _ITEMS.c.id == bindparam("item"),
        or_(*(_ITEMS.c.verdict == verdict for verdict in OPEN_VERDICTS)),
    )
    .values(verdict=bindparam("outcome"), reasons=bindparam("why"), decided_at=bindparam("at"))
)


def _require_repository(conn: Connection, name: str) -> None:
    from registry.db.models import Repository

    table = _table(Repository)
    if conn.execute(select(table.c.id).where(table.c.name == name)).first() is None:
        raise NotFound(f"repository {name!r} not found; 'arbiter repo list' shows them")


def _item(run_id: int, verdict: engine.Verdict, state: str, **extra: Any) -> dict[str, Any]:
    version = verdict.version
    return {
        "run_id": run_id,
        "version_id": version.id,
        "trash_id": None,
        "repository": version.repository,
        "format": version.format,
        "package": version.package,
        "version": version.version,
        "rule_id": verdict.rule_id,
        "rule_name": verdict.rule_name[:200],
        "verdict": state,
        "reason": verdict.reason[:512],
        "reasons": [],
        "size": version.size,
        "decided_at": extra.get("decided_at"),
    }


def _purge_item(run_id: int, trash_row: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "version_id": None,
        "trash_id": trash_row["id"],
        "repository": trash_row["repository"],
        "format": trash_row["format"],
        "package": trash_row["package"],
        "version": trash_row["version"],
        "rule_id": trash_row["rule_id"],
        "rule_name": trash_row["rule_name"],
        "verdict": PURGE_PENDING,
        "reason": f"recovery period over (deleted {trash_row['deleted_at']})",
        "reasons": [],
        "size": trash_row["size"],
        "decided_at": None,
    }


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
