"""Rows of SBOM documents, findings and version summaries, written inside governed changes.

Every function takes the caller's session: they run inside the transaction
of the push (or the rescan, or the producer-SBOM upload) they belong to, so
an SBOM, its findings and the audit event that records them commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from registry.db.models import Package, Repository, Tag, Version
from registry.supplychain.models import (
    COMPLETE,
    FAILED,
    GENERATED,
    PENDING,
    Finding,
    SbomDocument,
    ScanSummary,
)
from registry.supplychain.summary import Findings, SbomSummary
from registry.supplychain.vulndb.matcher import Match


def version_id(session: Session, repository: str, name: str, version: str) -> int | None:
    """The id of ``repository/name/version``, or ``None``."""
    found = session.exec(
        select(Version.id)
        .join(Package, col(Version.package_id) == col(Package.id))
        .join(Repository, col(Package.repository_id) == col(Repository.id))
        .where(Repository.name == repository, Package.name == name, Version.version == version)
    ).first()
    return found


def resolve_version_id(session: Session, repository: str, name: str, reference: str) -> int | None:
    """The version ``reference`` names: a version string, else a tag pointing at one.

    OCI versions are manifest digests; ``v1.0`` names the manifest the tag
    points at now (npm dist-tags resolve the same way).
    """
    found = version_id(session, repository, name, reference)
    if found is not None:
        return found
    return session.exec(
        select(Tag.version_id)
        .join(Package, col(Tag.package_id) == col(Package.id))
        .join(Repository, col(Package.repository_id) == col(Repository.id))
        .where(Repository.name == repository, Package.name == name, Tag.name == reference)
    ).first()


def save_document(session: Session, document: SbomDocument) -> SbomDocument:
    """Insert ``document``, replacing the one for the same version, file and source."""
    session.exec(
        delete(SbomDocument).where(
            col(SbomDocument.version_id) == document.version_id,
            col(SbomDocument.file) == document.file,
            col(SbomDocument.source) == document.source,
        )
    )
    session.add(document)
    session.flush()
    return document


def documents(session: Session, version: int) -> list[SbomDocument]:
    return list(
        session.exec(
            select(SbomDocument)
            .where(SbomDocument.version_id == version)
            .order_by(col(SbomDocument.source), col(SbomDocument.file))
        ).all()
    )


def findings(session: Session, version: int) -> list[Finding]:
    return list(
        session.exec(
            select(Finding)
            .where(Finding.version_id == version)
            .order_by(col(Finding.advisory_id), col(Finding.purl))
        ).all()
    )


def add_findings(session: Session, version: int, matches: Sequence[Match]) -> list[Match]:
    """Record the matches not recorded yet; returns those that are new."""
    known = {(f.advisory_id, f.purl) for f in findings(session, version)}
    new = [m for m in matches if (m.advisory_id, m.purl) not in known]
    for match in new:
        session.add(_finding(version, match))
    session.flush()
    return new


def replace_findings(
    session: Session, version: int, matches: Sequence[Match]
) -> tuple[list[Match], list[Finding]]:
    """Make the version's findings exactly ``matches``; returns (new, resolved)."""
    current = {(f.advisory_id, f.purl): f for f in findings(session, version)}
    wanted = {(m.advisory_id, m.purl): m for m in matches}
    new = [m for key, m in wanted.items() if key not in current]
    resolved = [f for key, f in current.items() if key not in wanted]
    for finding in resolved:
        session.delete(finding)
    for match in new:
        session.add(_finding(version, match))
    session.flush()
    return new, resolved


def refresh_summary(session: Session, version: int, revision: str) -> ScanSummary:
    """Recompute the version's summary from its documents and findings."""
    docs = documents(session, version)
    rows = findings(session, version)
    failed = [d for d in docs if d.status == FAILED and d.source == GENERATED]
    status = FAILED if failed else (COMPLETE if docs else PENDING)
    sbom = SbomSummary.union(SbomSummary.from_json(d.summary) for d in docs)
    found = Findings.of([as_match(f) for f in rows])
    summary = session.get(ScanSummary, version) or ScanSummary(version_id=version)
    summary.status = status
    summary.reason = failed[0].reason if failed else None
    summary.components = sbom.components
    summary.licenses = list(sbom.licenses)
    summary.purls = list(sbom.purls)
    summary.counts = dict(found.counts)
    summary.ids = list(found.ids)
    summary.fixable = list(found.fixable)
    summary.vulndb_revision = revision
    summary.scanned_at = datetime.now(UTC)
    session.add(summary)
    session.flush()
    return summary


def summary(session: Session, version: int) -> ScanSummary | None:
    return session.get(ScanSummary, version)


def version_purls(session: Session, version: int) -> list[str]:
    """Every purl any SBOM document of the version names (what rescans match)."""
    purls: set[str] = set()
    for document in documents(session, version):
        purls.update(document.summary.get("purls", ()))
    return sorted(purls)


def _finding(version: int, match: Match) -> Finding:
    return Finding(
        version_id=version,
        advisory_id=match.advisory_id,
        aliases=list(match.aliases),
        purl=match.purl,
        package=match.package,
        installed=match.installed,
        severity=match.severity,
        score=match.score,
        fixed=list(match.fixed),
        summary=match.summary,
    )


def as_match(finding: Finding) -> Match:
    return Match(
        advisory_id=finding.advisory_id,
        aliases=tuple(finding.aliases),
        summary=finding.summary,
        severity=finding.severity,
        score=finding.score,
        purl=finding.purl,
        package=finding.package,
        installed=finding.installed,
        fixed=tuple(finding.fixed),
    )
