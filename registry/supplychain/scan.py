"""Analyse one artifact file: SBOM, validation, findings -- never raising for bad content.

:func:`run` is what every entry point shares (the push hook, the bench, the
tests): pick the format's analyser, build and validate the CycloneDX
document, match its components against the vulnerability data, and return a
:class:`Result`. Content that cannot be analysed (a bound reached, a hostile
or broken archive) gives ``status = "failed"`` with the reason; so does a
bug in an analyser, logged with its traceback, because a push must get a
decision, not a crash.

Analysers are registered by format (:func:`register`); formats without one
get the archive analyser, which also recognises wheels, sdists, npm tarballs
and JARs by their contents.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

import structlog

from registry.db import Database
from registry.supplychain.errors import SbomInvalid, ScanFailed
from registry.supplychain.limits import ScanLimits
from registry.supplychain.models import COMPLETE, FAILED
from registry.supplychain.sbom import cyclonedx, validate
from registry.supplychain.sbom.analyse import analyse_file
from registry.supplychain.sbom.inventory import Inventory
from registry.supplychain.summary import Findings, SbomSummary, facts
from registry.supplychain.vulndb import revision
from registry.supplychain.vulndb.ecosystems import keys
from registry.supplychain.vulndb.index import AdvisoryIndex
from registry.supplychain.vulndb.matcher import Match, match

log = structlog.get_logger("arbiter.supplychain")


@dataclass(frozen=True)
class Target:
    """The artifact file being analysed, and where it is going."""

    repository: str
    format: str
    name: str
    version: str
    filename: str
    digest: str
    size: int
    container: bool = False  # an OCI image: the SBOM's subject is a container

    def subject(self) -> cyclonedx.Subject:
        return cyclonedx.Subject(
            repository=self.repository,
            name=self.name,
            version=self.version,
            filename=self.filename,
            digest=self.digest,
            format=self.format,
            container=self.container,
        )


Analyser = Callable[[BinaryIO, Target, ScanLimits], Inventory]


def _archive(file: BinaryIO, target: Target, limits: ScanLimits) -> Inventory:
    return analyse_file(file, filename=target.filename, size=target.size, limits=limits)


_ANALYSERS: dict[str, Analyser] = {}


def register(format_name: str, analyser: Analyser) -> None:
    """Use ``analyser`` for artifacts of ``format_name`` (replacing any before)."""
    _ANALYSERS[format_name] = analyser


def analyser_for(format_name: str) -> Analyser:
    return _ANALYSERS.get(format_name, _archive)


@dataclass
class Result:
    """One analysis: its status, the SBOM (JSON bytes) and its summary, the findings."""

    target: Target
    status: str
    reason: str | None = None
    document: bytes | None = None
    summary: SbomSummary = field(default_factory=SbomSummary)
    matches: list[Match] = field(default_factory=list)
    revision: str = ""

    @property
    def findings(self) -> Findings:
        return Findings.of(self.matches)

    def facts(self) -> dict[str, Any]:
        """``input.artifact`` facts for the content-stage decision."""
        return facts(self.summary, self.findings, status=self.status, reason=self.reason)

    def details(self, sbom_digest: str | None) -> dict[str, Any]:
        """What the ``analyse`` audit event records (lineage reads ``sbom`` and ``findings``)."""
        found = self.findings
        return {
            "scan": {"status": self.status, "reason": self.reason},
            "sbom": {
                "format": "CycloneDX",
                "spec_version": cyclonedx.SPEC_VERSION,
                "digest": sbom_digest,
                "components": self.summary.components,
                "files": self.summary.files,
                "licenses": list(self.summary.licenses),
            },
            "findings": {**found.counts, "ids": sorted({m.advisory_id for m in self.matches})},
            "vulndb_revision": self.revision,
        }


def run(file: BinaryIO, target: Target, *, limits: ScanLimits, db: Database | None) -> Result:
    """Analyse ``file``; findings are matched when ``db`` is given."""
    return run_with(lambda: analyser_for(target.format)(file, target, limits), target, db=db)


def run_with(
    inventory_of: Callable[[], Inventory], target: Target, *, db: Database | None
) -> Result:
    """:func:`run` for an analysis ``inventory_of`` makes (an image's layers, say)."""
    try:
        inventory = inventory_of()
        bom = cyclonedx.build(inventory, target.subject(), timestamp=datetime.now(UTC))
        text = cyclonedx.to_json(bom)
        validate.validate_json(json.loads(text), strict=True)
    except ScanFailed as failure:
        return Result(target, FAILED, failure.reason)
    except SbomInvalid as invalid:
        log.error("generated SBOM is not valid CycloneDX", error=invalid.message)
        return Result(target, FAILED, f"the generated SBOM failed validation: {invalid.message}")
    except Exception as error:  # a bug must not turn a push into a crash
        log.exception("analysis failed", file=target.filename)
        return Result(target, FAILED, f"analysis error: {type(error).__name__}: {error}"[:500])
    summary = SbomSummary.of(inventory)
    result = Result(target, COMPLETE, document=text.encode("utf-8"), summary=summary)
    if db is not None:
        with db.reader() as session:
            conn = session.connection()
            result.revision = revision.current(conn)
            result.matches = match_purls(conn, summary.purls)
    return result


def match_purls(conn: Any, purls: tuple[str, ...] | list[str]) -> list[Match]:
    """Findings for ``purls`` from the imported vulnerability data."""
    wanted = [key for purl in purls for key in keys(purl)]
    if not wanted:
        return []
    return match(AdvisoryIndex.load(conn, wanted), purls)
