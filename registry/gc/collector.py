"""Online mark-and-sweep of blobs nothing references, safe while pushes run.

1. **Lease.** One collector at a time across processes (the ``gc`` lease).
2. **Mark.** Every digest referenced by any column with a foreign key to
   ``blobs.digest`` (:mod:`registry.gc.references`): files of every format,
   OCI manifests, the retention trash (restorable versions), and OCI image
   links that are live (:mod:`registry.gc.links`: a live manifest of the
   image, or a live index's child, references the blob, a trashed version
   needs it, or the link is inside the grace period or in an image with an
   upload open). The other links are *stale*: a deleted manifest's blobs.
3. **Unlink**, in batches, each in one write transaction: the stale links
   are checked again under the lock (on PostgreSQL, links a push holds
   locked are skipped) and those still stale are removed, so usage stops
   counting them. A crash in between leaves blobs nothing references, for
   the next run.
4. **Candidates.** Blobs in the store or in the ``blobs`` table that were not
   marked and are older than the grace period (the blob row's creation time,
   or the file's modification time when there is no row): a blob committed a
   moment ago may belong to a push whose rows are not committed yet.
5. **Sweep**, in batches, each in one write transaction that excludes the
   pushes it races with: on SQLite the transaction holds the database's write
   lock, under which every push commits its bytes and rows together; on
   PostgreSQL the batch's ``blobs`` rows are locked ``FOR UPDATE``, which a
   push inserting a reference to them (a foreign key) must wait for. Inside
   it the references are checked again, and only blobs still unreferenced
   lose their bytes and then their row, before the COMMIT. A push that
   committed a reference after the mark is seen by the re-check. A push
   still in flight that deduplicated into the blob refreshed its time, and
   :meth:`BlobStore.delete_if_idle` (rename aside, then look at the time)
   keeps it; a push that comes after the sweep finds no file and stores the
   bytes anew. (On PostgreSQL a push that found the row just before the
   sweep locked it may fail on its foreign key instead of referencing
   missing bytes; the client retries.) Upload sessions and staged bodies
   live outside the content-addressed area and are never candidates.
6. **Report**: bytes reclaimed, links removed, and each repository's usage
   right after; the ``gc.run`` audit event lists the blobs and links removed.

Grace is measured on the wall clock (pushes race in real time), not on the
injected clock that retention uses.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, Table, delete, select

from registry.auth.subject import Subject
from registry.blobs import BlobNotFound
from registry.db.models import Blob
from registry.db.oci_models import OciBlobLink
from registry.errors import Conflict
from registry.gc import links, references
from registry.gc.usage import repository_usage
from registry.retention.lease import GC, Lease
from registry.services import Services

DEFAULT_GRACE = timedelta(hours=1)
BATCH = 500
RECORDED_DIGESTS = 1000  # the audit event lists at most this many digests

log = structlog.get_logger("arbiter.gc")
_BLOBS: Table = Blob.__table__  # type: ignore[attr-defined]
_LINKS: Table = OciBlobLink.__table__  # type: ignore[attr-defined]


class CollectionInProgress(Conflict):
    """Another process is collecting garbage."""


@dataclass
class GcReport:
    dry_run: bool
    grace_seconds: float
    scanned: int = 0  # blobs in the store plus rows without bytes
    referenced: int = 0
    young: int = 0  # unreferenced but inside the grace period
    rescued: int = 0  # referenced again by the time their batch was swept
    deleted: int = 0
    rows_only: int = 0  # rows whose bytes were already gone
    bytes_reclaimed: int = 0
    unlinked: int = 0  # stale OCI blob links removed
    seconds: float = 0.0
    digests: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # "repository/image@digest" of each
    usage: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "grace_seconds": self.grace_seconds,
            "scanned": self.scanned,
            "referenced": self.referenced,
            "young": self.young,
            "rescued": self.rescued,
            "deleted": self.deleted,
            "rows_only": self.rows_only,
            "bytes_reclaimed": self.bytes_reclaimed,
            "unlinked": self.unlinked,
            "seconds": round(self.seconds, 3),
            "digests": self.digests[:RECORDED_DIGESTS],
            "links": self.links[:RECORDED_DIGESTS],
            "usage": self.usage,
        }


@dataclass(frozen=True)
class _Candidate:
    digest: str
    size: int
    has_row: bool
    has_file: bool


class GarbageCollector:
    """Collects unreferenced blobs of one registry (database plus blob store)."""

    def __init__(self, services: Services, *, batch: int = BATCH) -> None:
        self.services = services
        self.db = services.db
        self.blobs = services.blobs
        self.batch = batch
        self.lease = Lease(self.db, GC, lambda: datetime.now(UTC))

    def collect(
        self,
        subject: Subject,
        *,
        dry_run: bool = False,
        grace_minutes: float | None = None,
    ) -> GcReport:
        grace = DEFAULT_GRACE if grace_minutes is None else timedelta(minutes=grace_minutes)
        if not self.lease.acquire():
            raise CollectionInProgress(
                "garbage collection is running in another process; try again when it ends"
            )
        started = time.perf_counter()
        report = GcReport(dry_run=dry_run, grace_seconds=grace.total_seconds())
        try:
            with self.lease.heartbeat():
                since = datetime.now(UTC) - grace
                stale, candidates = self._mark(report, since)
                if dry_run:
                    report.unlinked = len(stale)
                    report.links = [link.name for link in stale]
                    report.deleted = len(candidates)
                    report.bytes_reclaimed = sum(c.size for c in candidates)
                    report.digests = sorted(c.digest for c in candidates)
                else:
                    for part in _chunks(stale, self.batch):
                        self._unlink(part, report, since)
                    for chunk in _chunks(candidates, self.batch):
                        self._sweep(chunk, report, since)
            with self.db.reader() as session:
                report.usage = repository_usage(session.connection())
        finally:
            self.lease.release()
        report.seconds = time.perf_counter() - started
        if not dry_run:
            self._record(subject, report)
        return report

    def _mark(
        self, report: GcReport, cutoff: datetime
    ) -> tuple[list[links.StaleLink], list[_Candidate]]:
        with self.db.reader() as session:
            conn = session.connection()
            stale = links.stale(conn, self.blobs, cutoff)
            marked = references.referenced(conn, without=(links.STORAGE,))
            marked |= links.held(conn, stale)
            rows = {
                digest: (int(size), _aware(created))
                for digest, size, created in conn.execute(
                    select(_BLOBS.c.digest, _BLOBS.c.size, _BLOBS.c.created_at)
                )
            }
        stored = set(self.blobs.iter_digests())
        everything = stored | set(rows)
        report.scanned = len(everything)
        candidates = []
        for digest in sorted(everything):
            if digest in marked:
                report.referenced += 1
                continue
            row = rows.get(digest)
            born = row[1] if row is not None else self._file_time(digest)
            if born is None or born > cutoff:
                report.young += 1
                continue
            size = row[0] if row is not None else self._file_size(digest)
            candidates.append(_Candidate(digest, size, row is not None, digest in stored))
        return stale, candidates

    def _unlink(self, part: list[links.StaleLink], report: GcReport, cutoff: datetime) -> None:
        """Remove one batch of stale links that are stale still, under the writers' lock."""
        with self.db.writer() as session:
            conn = session.connection()
            locked = links.lock(conn, [link.id for link in part])
            gone = links.stale(conn, self.blobs, cutoff, ids=locked) if locked else []
            if gone:
                conn.execute(delete(_LINKS).where(_LINKS.c.id.in_([link.id for link in gone])))
        report.unlinked += len(gone)
        report.links += [link.name for link in gone]

    def _sweep(self, chunk: list[_Candidate], report: GcReport, since: datetime) -> None:
        """Delete one batch under the lock that excludes the pushes it races with.

        Bytes go first, and only when no push touched them since ``since``
        (the mark's start minus the grace period); a row goes only with its
        bytes, so a push that deduplicated into a blob keeps both.
        """
        with self.db.writer() as session:
            conn = session.connection()
            digests = [c.digest for c in chunk]
            _lock_rows(conn, digests)
            again = references.still_referenced(conn, digests)
            rows: list[str] = []
            for candidate in chunk:
                if candidate.digest in again:
                    report.rescued += 1
                elif candidate.has_file and self.blobs.delete_if_idle(candidate.digest, since):
                    report.deleted += 1
                    report.bytes_reclaimed += candidate.size
                    report.digests.append(candidate.digest)
                    if candidate.has_row:
                        rows.append(candidate.digest)
                elif candidate.has_file and self.blobs.exists(candidate.digest):
                    report.rescued += 1  # a push stored these bytes again after the mark
                elif candidate.has_row:
                    report.rows_only += 1  # the bytes were already gone
                    rows.append(candidate.digest)
            for part in _chunks(rows, BATCH):
                conn.execute(delete(_BLOBS).where(_BLOBS.c.digest.in_(part)))

    def _record(self, subject: Subject, report: GcReport) -> None:
        details = report.to_json()
        details.pop("usage")
        details["digests_truncated"] = len(report.digests) > RECORDED_DIGESTS
        details["links_truncated"] = len(report.links) > RECORDED_DIGESTS
        self.services.governor.record(
            subject, "gc.run", {"gc": "blobs"}, lambda _session: None, details
        )

    def _file_time(self, digest: str) -> datetime | None:
        try:
            mtime = self.blobs.path_of(digest).stat().st_mtime
        except (BlobNotFound, FileNotFoundError):
            return None
        return datetime.fromtimestamp(mtime, UTC)

    def _file_size(self, digest: str) -> int:
        try:
            return self.blobs.size(digest)
        except BlobNotFound:
            return 0


def _lock_rows(conn: Connection, digests: list[str]) -> None:
    """PostgreSQL: lock the batch's rows; SQLite's write transaction already excludes writers."""
    if conn.dialect.name != "postgresql":
        return
    for part in _chunks(digests, BATCH):
        conn.execute(
            select(_BLOBS.c.digest).where(_BLOBS.c.digest.in_(part)).with_for_update()
        ).all()


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
