"""``arbiter vulndb import PATH``: OSV records into the database, idempotently.

PATH is an OSV export zip (one JSON record per member, as
``https://osv-vulnerabilities.storage.googleapis.com/<ecosystem>/all.zip``
serves it), a directory of OSV JSON files (searched recursively) or one
JSON file. Records are compared by digest: a record already imported
unchanged is left alone, a changed one replaces its rows, a new one is
added. Batches commit as they go (a progress callback hears of each); the
import's row -- with the new revision when anything changed, which is what
sends stored SBOMs to be rescanned -- and its ``vulndb.import`` audit event
commit together at the end, through :meth:`Governor.record` like every other
change the registry audits.

Hostile feeds are bounded: a member or file larger than :data:`MAX_RECORD`
or not JSON is skipped and counted, never loaded.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlmodel import Session

from registry.db import Database
from registry.supplychain.errors import VulnDbError
from registry.supplychain.models import OsvAdvisory, OsvAffected, VulnDbImport
from registry.supplychain.vulndb import revision
from registry.supplychain.vulndb.records import Advisory, parse

if TYPE_CHECKING:
    from registry.auth import Subject
    from registry.governance.governor import Governor

MAX_RECORD = 16 * 1024 * 1024
BATCH = 1000
IMPORT_ACTION = "vulndb.import"

Progress = Callable[[int, int], None]
_ADVISORIES = OsvAdvisory.__table__  # type: ignore[attr-defined]
_AFFECTED = OsvAffected.__table__  # type: ignore[attr-defined]


@dataclass
class ImportReport:
    source: str
    records: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    revision: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "records": self.records,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "revision": self.revision,
        }


def count_records(path: Path) -> int:
    """How many candidate records PATH holds (for a progress bar)."""
    if path.is_dir():
        return sum(1 for _ in path.rglob("*.json"))
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return sum(1 for name in archive.namelist() if name.endswith(".json"))
    return 1


def iter_raw(path: Path) -> Iterator[tuple[str, bytes | None]]:
    """``(name, bytes)`` of each record; ``None`` bytes for one that is too large."""
    if path.is_dir():
        for file in sorted(path.rglob("*.json")):
            if file.stat().st_size > MAX_RECORD:
                yield str(file), None
            else:
                yield str(file), file.read_bytes()
        return
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".json") or info.is_dir():
                    continue
                if info.file_size > MAX_RECORD:
                    yield info.filename, None
                    continue
                with archive.open(info) as member:
                    yield info.filename, member.read(MAX_RECORD + 1)
        return
    if path.is_file():
        yield str(path), path.read_bytes() if path.stat().st_size <= MAX_RECORD else None
        return
    raise VulnDbError(f"{path} is neither an OSV zip, a directory nor a JSON file")


def import_path(
    governor: Governor,
    path: Path,
    *,
    subject: Subject,
    progress: Progress | None = None,
    details: dict[str, Any] | None = None,
) -> ImportReport:
    """Import every record under ``path``; returns what changed.

    ``details`` are added to the audit event's (who ran it, from where).
    """
    db = governor.db
    if not path.exists():
        raise VulnDbError(f"{path} does not exist")
    report = ImportReport(source=str(path))
    total = count_records(path)
    started = datetime.now(UTC)
    changes: list[tuple[str, str]] = []
    batch: dict[str, Advisory] = {}
    done = 0
    for name, data in iter_raw(path):
        done += 1
        advisory = _parse(name, data)
        if advisory is None:
            report.skipped += 1
        else:
            batch[advisory.id] = advisory
        if len(batch) >= BATCH:
            _write(db, batch, report, changes)
            batch = {}
        if progress is not None:
            progress(done, total)
    if batch:
        _write(db, batch, report, changes)
    report.records = done
    with db.reader() as session:
        previous = revision.current(session.connection())
    report.revision = revision.next_revision(previous, changes) if changes else previous

    def record_import(session: Session) -> None:
        session.connection().execute(
            insert(VulnDbImport.__table__).values(  # type: ignore[attr-defined]
                source=report.source[:1024],
                records=report.records,
                added=report.added,
                updated=report.updated,
                unchanged=report.unchanged,
                skipped=report.skipped,
                revision=report.revision if changes else "",
                imported_by=subject.id[:128],
                started_at=started,
                finished_at=datetime.now(UTC),
            )
        )

    resource = {"vulndb": "osv"}
    governor.record(
        subject, IMPORT_ACTION, resource, record_import, {**report.to_json(), **(details or {})}
    )
    return report


def _parse(name: str, data: bytes | None) -> Advisory | None:
    if data is None or len(data) > MAX_RECORD:
        return None
    try:
        return parse(json.loads(data), source=name)
    except (ValueError, UnicodeDecodeError, VulnDbError, RecursionError):
        return None


def _write(
    db: Database,
    batch: dict[str, Advisory],
    report: ImportReport,
    changes: list[tuple[str, str]],
) -> None:
    with db.writer() as session:
        conn = session.connection()
        rows = conn.execute(
            select(_ADVISORIES.c.id, _ADVISORIES.c.digest).where(_ADVISORIES.c.id.in_(list(batch)))
        )
        known: dict[str, str] = {row.id: row.digest for row in rows}
        new = [a for a in batch.values() if a.id not in known]
        changed = [a for a in batch.values() if a.id in known and known[a.id] != a.digest]
        report.unchanged += len(batch) - len(new) - len(changed)
        report.added += len(new)
        report.updated += len(changed)
        if changed:
            ids = [a.id for a in changed]
            conn.execute(delete(_AFFECTED).where(_AFFECTED.c.advisory_id.in_(ids)))
            for advisory in changed:
                conn.execute(
                    update(_ADVISORIES)
                    .where(_ADVISORIES.c.id == advisory.id)
                    .values(**_advisory_row(advisory, report.source))
                )
        if new:
            conn.execute(
                insert(_ADVISORIES),
                [{"id": a.id, **_advisory_row(a, report.source)} for a in new],
            )
        _insert_affected(conn, [*new, *changed])
        changes.extend((a.id, a.digest) for a in (*new, *changed))


def _advisory_row(advisory: Advisory, source: str) -> dict[str, Any]:
    return {
        "modified": advisory.modified[:40],
        "published": advisory.published[:40] if advisory.published else None,
        "withdrawn": advisory.withdrawn[:40] if advisory.withdrawn else None,
        "summary": advisory.summary,
        "aliases": advisory.aliases,
        "severity": advisory.severity.label,
        "score": advisory.severity.score,
        "vector": (advisory.severity.vector or "")[:256] or None,
        "digest": advisory.digest,
        "source": source[-256:],
        "imported_at": datetime.now(UTC),
    }


def _insert_affected(conn: Connection, advisories: list[Advisory]) -> None:
    rows = [
        {
            "advisory_id": advisory.id,
            "ecosystem": affected.ecosystem[:64],
            "release": affected.release[:64],
            "name": affected.name[:512],
            "ranges": affected.ranges,
            "versions": affected.versions,
        }
        for advisory in advisories
        for affected in advisory.affected
    ]
    if rows:
        conn.execute(insert(_AFFECTED), rows)
