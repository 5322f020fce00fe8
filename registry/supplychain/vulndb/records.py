"""An OSV record as Arbiter keeps it: identity, severity, and per package its ranges.

Only what matching and reporting need is kept in columns; the record's
digest (SHA-256 over its canonical JSON) makes re-imports idempotent: an
unchanged record is recognised and left alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from registry.supplychain.errors import VulnDbError
from registry.supplychain.vulndb import severity
from registry.supplychain.vulndb.ecosystems import normalize_name, split_ecosystem

MAX_SUMMARY = 500


@dataclass(frozen=True)
class Affected:
    """One affected package of a record: ranges as OSV wrote them, explicit versions."""

    ecosystem: str
    release: str
    name: str
    ranges: list[dict[str, Any]] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Advisory:
    id: str
    modified: str
    published: str | None
    withdrawn: str | None
    summary: str
    aliases: list[str]
    severity: severity.Severity
    affected: list[Affected]
    digest: str


def parse(record: Any, *, source: str = "") -> Advisory:
    """An :class:`Advisory` from a parsed OSV record; :class:`VulnDbError` when it is none."""
    if not isinstance(record, Mapping) or not isinstance(record.get("id"), str):
        raise VulnDbError(f"{source or 'record'} is not an OSV record (no 'id')")
    affected: list[Affected] = []
    for entry in record.get("affected") or []:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("package"), Mapping):
            continue
        package = entry["package"]
        raw_ecosystem, name = package.get("ecosystem"), package.get("name")
        if not isinstance(raw_ecosystem, str) or not isinstance(name, str):
            continue
        ecosystem, release = split_ecosystem(raw_ecosystem)
        ranges = [
            dict(r)
            for r in entry.get("ranges") or []
            if isinstance(r, Mapping) and r.get("type") in ("SEMVER", "ECOSYSTEM")
        ]
        versions = [v for v in entry.get("versions") or [] if isinstance(v, str)]
        if ranges or versions:
            affected.append(
                Affected(ecosystem, release, normalize_name(ecosystem, name), ranges, versions)
            )
    summary = record.get("summary") or record.get("details") or ""
    digest = hashlib.sha256(
        json.dumps(record, sort_keys=True, separators=(",", ":")).encode("utf-8")
    ).hexdigest()
    return Advisory(
        id=record["id"],
        modified=str(record.get("modified", "")),
        published=_text(record.get("published")),
        withdrawn=_text(record.get("withdrawn")),
        summary=str(summary).strip().splitlines()[0][:MAX_SUMMARY] if str(summary).strip() else "",
        aliases=sorted({a for a in record.get("aliases") or [] if isinstance(a, str)}),
        severity=severity.of_record(record),
        affected=affected,
        digest="sha256:" + digest,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
