"""The summary of an analysis: what the policy reads and what a version's rows keep.

One shape for three places: the content-stage decision of a push (one
file's analysis), the ``scan_summaries`` row of a version (the union of its
documents and findings) and the pull decision that reads that row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry.supplychain.models import COMPLETE, FAILED, PENDING
from registry.supplychain.sbom import licenses
from registry.supplychain.sbom.inventory import Inventory
from registry.supplychain.vulndb.matcher import Match
from registry.supplychain.vulndb.severity import LEVELS

__all__ = ["COMPLETE", "FAILED", "PENDING", "Findings", "SbomSummary", "facts"]


@dataclass(frozen=True)
class SbomSummary:
    """Licenses (SPDX ids), purls and counts of one SBOM or of a version's SBOMs."""

    licenses: tuple[str, ...] = ()
    purls: tuple[str, ...] = ()
    components: int = 0
    files: int = 0

    @classmethod
    def of(cls, inventory: Inventory) -> SbomSummary:
        packages = [*([inventory.root] if inventory.root else []), *inventory.packages.values()]
        ids = {i for p in packages for i in licenses.ids(p.licenses)}
        return cls(
            licenses=tuple(sorted(ids)),
            purls=tuple(sorted({p.purl for p in packages})),
            components=len(packages),
            files=len(inventory.files) + inventory.files_omitted,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SbomSummary:
        return cls(
            licenses=tuple(data.get("licenses", ())),
            purls=tuple(data.get("purls", ())),
            components=int(data.get("components", 0)),
            files=int(data.get("files", 0)),
        )

    @classmethod
    def union(cls, summaries: Iterable[SbomSummary]) -> SbomSummary:
        items = list(summaries)
        purls = sorted({p for s in items for p in s.purls})
        return cls(
            licenses=tuple(sorted({i for s in items for i in s.licenses})),
            purls=tuple(purls),
            components=len(purls),
            files=sum(s.files for s in items),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "licenses": list(self.licenses),
            "purls": list(self.purls),
            "components": self.components,
            "files": self.files,
        }


@dataclass(frozen=True)
class Findings:
    """Counts by severity, advisory ids (with aliases) and the ids a fixed version exists for."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    ids: tuple[str, ...] = ()
    fixable: tuple[str, ...] = ()

    @classmethod
    def of(cls, matches: Sequence[Match]) -> Findings:
        counts = dict.fromkeys(LEVELS, 0)
        seen: set[str] = set()
        for match in matches:
            if match.advisory_id in seen:
                continue  # one advisory against two components counts once
            seen.add(match.advisory_id)
            counts[match.severity if match.severity in counts else "unknown"] += 1
        ids = {m.advisory_id for m in matches} | {a for m in matches for a in m.aliases}
        return cls(
            counts=counts,
            ids=tuple(sorted(ids)),
            fixable=tuple(sorted({m.advisory_id for m in matches if m.fixable})),
        )

    def to_json(self) -> dict[str, Any]:
        return {**self.counts, "ids": list(self.ids), "fixable": list(self.fixable)}


def facts(
    sbom: SbomSummary, findings: Findings, *, status: str, reason: str | None
) -> dict[str, Any]:
    """``input.artifact`` facts: ``sbom``, ``vulnerabilities`` and ``scan``."""
    return {
        "sbom": {"licenses": list(sbom.licenses), "purls": list(sbom.purls)},
        "vulnerabilities": findings.to_json(),
        "scan": {"status": status, "reason": reason, "components": sbom.components},
    }
