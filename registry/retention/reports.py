"""What a run would do (the preview) and what it did (the report it keeps).

The preview lists every version the rules would delete now, with the rule
and the bytes, for ``--dry-run`` and ``GET /api/v1/retention/preview``.

The report is built from the run's items once the run ends and stored in the
run's row (``GET /api/v1/retention/runs/{id}``), so it survives the process
and always matches the audit events the run wrote (each listed deletion and
veto has one, carrying the same rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from registry.retention import engine
from registry.retention.models import (
    DELETED,
    ERROR,
    KEPT,
    PURGE_VETOED,
    PURGED,
    SKIPPED,
    VETOED,
)

SECTIONS = {
    DELETED: "deleted",
    VETOED: "vetoed",
    KEPT: "kept",
    PURGED: "purged",
    PURGE_VETOED: "purge_vetoed",
    SKIPPED: "skipped",
    ERROR: "errors",
}


def entry(item: Mapping[Any, Any]) -> dict[str, Any]:
    """One version in a report: where it is, the rule, why, how big."""
    found = {
        "repository": item["repository"],
        "package": item["package"],
        "version": item["version"],
        "rule": item["rule_id"],
        "rule_name": item["rule_name"],
        "reason": item["reason"],
        "bytes": int(item["size"]),
    }
    if item["reasons"]:
        found["policy_reasons"] = list(item["reasons"])
    return found


def build(
    run: Mapping[str, Any],
    items: Iterable[Mapping[Any, Any]],
    kept: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The report of ``run`` (a run row) from its ``items`` (item rows) and what rules kept.

    Versions a rule kept need no decision, so the run keeps them as report
    entries from the start rather than as items.
    """
    sections: dict[str, list[dict[str, Any]]] = {name: [] for name in SECTIONS.values()}
    sections["kept"] = list(kept)
    for item in items:
        section = SECTIONS.get(item["verdict"])
        if section is not None:
            sections[section].append(entry(item))
    summary = {name: len(entries) for name, entries in sections.items()}
    summary["bytes_deleted"] = sum(e["bytes"] for e in sections["deleted"])
    summary["bytes_purged"] = sum(e["bytes"] for e in sections["purged"])
    return {
        "run": run["id"],
        "trigger": run["trigger"],
        "repository": run["repository"],
        "rule_set_version": run["rule_set_version"],
        "requested_by": run["requested_by"],
        "started_at": _time(run["started_at"]),
        "summary": summary,
        **sections,
    }


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class Preview:
    """A plan without side effects, for ``--dry-run`` and the preview API."""

    rule_set_version: int
    repository: str | None
    plan: engine.Plan
    at: datetime

    def to_json(self, *, include_kept: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "rule_set_version": self.rule_set_version,
            "repository": self.repository,
            "time": self.at.isoformat(),
            "versions": self.plan.versions,
            "would_delete": len(self.plan.deletions),
            "bytes_reclaimed": self.plan.bytes_reclaimed,
            "kept_by_rule": len(self.plan.kept),
            "deletes_everything": self.plan.deletes_everything(),
            "deletions": [_verdict_json(v) for v in self.plan.deletions],
        }
        if include_kept:
            body["kept"] = [_verdict_json(v) for v in self.plan.kept]
        return body


def _verdict_json(verdict: engine.Verdict) -> dict[str, Any]:
    version = verdict.version
    return {
        "repository": version.repository,
        "package": version.package,
        "version": version.version,
        "rule": verdict.rule_id,
        "rule_name": verdict.rule_name,
        "reason": verdict.reason,
        "bytes": version.size,
        "created_at": version.created_at.isoformat(),
        "last_pulled_at": version.last_pulled_at.isoformat() if version.last_pulled_at else None,
        "tags": list(version.tags),
    }
