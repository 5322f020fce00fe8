"""Vulnerability findings of an artifact version, as stored after its analysis and rescans."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from registry.api.sbom import may_read, split
from registry.errors import NotFound
from registry.governance.facts import find_repository
from registry.supplychain import storage
from registry.supplychain.models import PENDING, Finding, ScanSummary
from registry.web.deps import ContextDep, ServicesDep, SubjectDep

router = APIRouter(prefix="/findings", tags=["findings"])


@router.get("/{repository}/{path:path}")
async def get_findings(
    repository: str,
    path: str,
    services: ServicesDep,
    subject: SubjectDep,
    context: ContextDep,
) -> dict[str, Any]:
    """Scan status, counts by severity and every finding (advisory, component, fix)."""
    name, version = split(path, "findings")
    await run_in_threadpool(may_read, services, subject, context, repository, "findings")

    def load() -> dict[str, Any]:
        with services.db.reader() as session:
            find_repository(session, repository)
            version_id = storage.resolve_version_id(session, repository, name, version)
            if version_id is None:
                raise NotFound(f"version {name}/{version} not found in {repository}")
            summary = storage.summary(session, version_id)
            rows = storage.findings(session, version_id)
            return _render(repository, name, version, summary, rows)

    return await run_in_threadpool(load)


def _render(
    repository: str, name: str, version: str, summary: ScanSummary | None, rows: list[Finding]
) -> dict[str, Any]:
    return {
        "repository": repository,
        "name": name,
        "version": version,
        "scan": {
            "status": summary.status if summary else PENDING,
            "reason": summary.reason if summary else None,
            "scanned_at": summary.scanned_at.isoformat() if summary else None,
            "vulndb_revision": summary.vulndb_revision if summary else "",
            "components": summary.components if summary else 0,
        },
        "counts": dict(summary.counts) if summary else {},
        "findings": [
            {
                "id": row.advisory_id,
                "aliases": list(row.aliases),
                "severity": row.severity,
                "score": row.score,
                "purl": row.purl,
                "package": row.package,
                "installed": row.installed,
                "fixed": list(row.fixed),
                "summary": row.summary,
                "first_seen_at": row.first_seen_at.isoformat(),
            }
            for row in rows
        ],
    }
