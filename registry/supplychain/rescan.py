"""Rescans: when the vulnerability data changes, match stored SBOMs again.

Every version's summary names the vulnerability-data revision its findings
were matched against. :meth:`Rescanner.run_once` takes the versions behind
the current revision, matches the purls of their stored SBOM documents (no
blob is re-read: the document rows keep their purls) and replaces their
findings. A version whose findings changed gets an ``analyse`` event
(``trigger: rescan``, the new and the resolved advisories) in the same
transaction as the change, so lineage shows it and the next pull decision
sees it; one whose findings did not change only moves to the new revision.

:class:`RescanScheduler` runs that every ``ARBITER_SCAN_RESCAN_INTERVAL_S``
seconds in each serving process (APScheduler 3, in memory). Two processes
may both rescan a version after an import; the second finds nothing new.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select
from sqlmodel import Session

from registry.auth.subject import Subject
from registry.db import Database
from registry.db.models import Package, Repository, Version
from registry.governance import Governor
from registry.supplychain import storage
from registry.supplychain.hook import ANALYSE
from registry.supplychain.models import ScanSummary
from registry.supplychain.summary import Findings
from registry.supplychain.vulndb import revision
from registry.supplychain.vulndb.ecosystems import keys
from registry.supplychain.vulndb.index import AdvisoryIndex
from registry.supplychain.vulndb.matcher import match

RESCANNER = Subject(id="supplychain-rescanner", kind="robot")
BATCH = 200
DEFAULT_INTERVAL_S = 60.0
log = structlog.get_logger("arbiter.supplychain.rescan")


@dataclass
class RescanReport:
    revision: str = ""
    versions: int = 0
    changed: int = 0
    new: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Stale:
    version_id: int
    repository: str
    format: str
    name: str
    version: str


class Rescanner:
    """Brings every version's findings up to the current vulnerability data."""

    def __init__(self, db: Database, governor: Governor) -> None:
        self.db = db
        self.governor = governor
        self._lock = threading.Lock()

    def run_once(self) -> RescanReport:
        """One pass over the stale versions; safe to call from several threads."""
        with self._lock:
            return self._run()

    def _run(self) -> RescanReport:
        with self.db.reader() as session:
            current = revision.current(session.connection())
            stale = list(_stale(session, current)) if current else []
        report = RescanReport(revision=current)
        for start in range(0, len(stale), BATCH):
            self._batch(stale[start : start + BATCH], current, report)
        if report.versions:
            log.info("rescan", revision=current, versions=report.versions, changed=report.changed)
        return report

    def _batch(self, batch: list[_Stale], current: str, report: RescanReport) -> None:
        with self.db.reader() as session:
            purls = {s.version_id: storage.version_purls(session, s.version_id) for s in batch}
            wanted = [k for ps in purls.values() for p in ps for k in keys(p)]
            index = AdvisoryIndex.load(session.connection(), wanted)
        for item in batch:
            matches = match(index, purls[item.version_id])
            report.versions += 1
            new_ids = self._apply(item, matches, current)
            if new_ids is not None:
                report.changed += 1
                report.new.extend(new_ids)

    def _apply(self, item: _Stale, matches: list[Any], current: str) -> list[str] | None:
        """Replace the findings; an ``analyse`` event when they changed. Returns new ids."""
        with self.db.reader() as session:
            known = {(f.advisory_id, f.purl) for f in storage.findings(session, item.version_id)}
        wanted = {(m.advisory_id, m.purl) for m in matches}
        if known == wanted:
            with self.db.writer() as session:
                storage.refresh_summary(session, item.version_id, current)
            return None
        new_ids = sorted({m.advisory_id for m in matches if (m.advisory_id, m.purl) not in known})
        resolved = sorted({advisory for advisory, purl in known - wanted})
        found = Findings.of(matches)

        def change(session: Session) -> None:
            storage.replace_findings(session, item.version_id, matches)
            storage.refresh_summary(session, item.version_id, current)

        resource = {
            "repository": item.repository,
            "format": item.format,
            "name": item.name,
            "version": item.version,
        }
        details = {
            "trigger": "rescan",
            "vulndb_revision": current,
            "findings": {**found.counts, "ids": sorted({m.advisory_id for m in matches})},
            "new": new_ids,
            "resolved": resolved,
        }
        self.governor.record(RESCANNER, ANALYSE, resource, change, details)
        return new_ids


def _stale(session: Session, current: str) -> Iterator[_Stale]:
    rows = session.execute(
        select(
            ScanSummary.version_id,  # type: ignore[call-overload]
            Repository.name,
            Repository.format,
            Package.name,
            Version.version,
        )
        .join(Version, Version.id == ScanSummary.version_id)
        .join(Package, Package.id == Version.package_id)
        .join(Repository, Repository.id == Package.repository_id)
        .where(ScanSummary.vulndb_revision != current)
        .order_by(ScanSummary.version_id)
    )
    for row in rows:
        yield _Stale(*row)


class RescanScheduler:
    """This process's rescan job; start once, shut down on close."""

    def __init__(self, rescanner: Rescanner, *, interval_s: float | None = None) -> None:
        self.rescanner = rescanner
        configured = os.environ.get("ARBITER_SCAN_RESCAN_INTERVAL_S")
        self.interval_s = interval_s or (float(configured) if configured else DEFAULT_INTERVAL_S)
        self.scheduler = BackgroundScheduler(
            timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1}
        )

    def start(self) -> None:
        self.scheduler.add_job(
            self._tick, "interval", seconds=self.interval_s, id="supplychain-rescan"
        )
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=True)

    def _tick(self) -> None:
        try:
            self.rescanner.run_once()
        except Exception:  # the next tick tries again; a failing job must not stop the scheduler
            log.exception("rescan failed")


def start(services: Any) -> RescanScheduler:
    """Start rescans for a serving instance (``registry.services.Services``)."""
    scheduler = RescanScheduler(Rescanner(services.db, services.governor))
    scheduler.start()
    return scheduler
