"""Retention and garbage collection: rules, previews, runs, reports, restore, GC.

Every route needs the global admin role. Rule changes are new versions of the
rule set (audited); a run's deletions are governed ``retain`` actions. Bad
input is refused with 422 naming the field (``body.rules.0.include``,
``body.schedule.cron``, ``body.rules.0.keep_last``).
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from registry.errors import NotFound
from registry.gc import GarbageCollector
from registry.gc.usage import repository_usage
from registry.retention import rulesets
from registry.retention.models import RetentionRun, RetentionTrash
from registry.retention.rules import Rule, RuleSet
from registry.retention.runner import RetentionRunner
from registry.web.deps import AdminDep, ServicesDep

router = APIRouter(tags=["retention"])

_RUN_FIELDS = (
    "id",
    "status",
    "trigger",
    "repository",
    "rule_set_version",
    "requested_by",
    "confirmed",
    "attempts",
    "deleted",
    "vetoed",
    "kept",
    "purged",
    "errors",
    "bytes_deleted",
    "bytes_purged",
    "error",
    "created_at",
    "started_at",
    "finished_at",
)


class RuleSetIn(RuleSet):
    """A whole rule set, plus a note on why it changed (kept with the version)."""

    comment: str = Field(default="", max_length=512)


class RestoreIn(BaseModel):
    repository: str
    package: str
    version: str


def _rule_set(body: RuleSet) -> RuleSet:
    return RuleSet.model_validate(body.model_dump(exclude={"comment"}))


# -- rules ---------------------------------------------------------------------


@router.get("/retention/rules")
def get_rules(services: ServicesDep, _admin: AdminDep) -> dict[str, Any]:
    return rulesets.current(services.db).to_json()


@router.put("/retention/rules")
def put_rules(body: RuleSetIn, services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    """Replace the rule set: stored as the next version, audited."""
    return rulesets.save(services.governor, admin, _rule_set(body), body.comment).to_json()


@router.post("/retention/rules/rules")
def put_rule(body: Rule, services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    """Add a rule, or replace the rule with the same id: a new version of the rule set."""
    current = rulesets.current(services.db).rule_set
    rules = [rule for rule in current.rules if rule.id != body.id] + [body]
    updated = RuleSet.model_validate(
        {**current.document(), "rules": [r.model_dump() for r in rules]}
    )
    return rulesets.save(services.governor, admin, updated, f"rule {body.id} set").to_json()


@router.delete("/retention/rules/rules/{rule_id}")
def delete_rule(rule_id: str, services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    current = rulesets.current(services.db).rule_set
    rules = [rule for rule in current.rules if rule.id != rule_id]
    if len(rules) == len(current.rules):
        raise NotFound(f"no rule {rule_id!r} in the current rule set")
    updated = current.model_copy(update={"rules": rules})
    return rulesets.save(services.governor, admin, updated, f"rule {rule_id} removed").to_json()


@router.get("/retention/rules/history")
def rules_history(services: ServicesDep, _admin: AdminDep) -> list[dict[str, Any]]:
    return [
        {
            "version": stored.version,
            "created_by": stored.created_by,
            "created_at": stored.created_at.isoformat() if stored.created_at else None,
            "comment": stored.comment,
            "rules": [rule.id for rule in stored.rule_set.rules],
        }
        for stored in rulesets.history(services.db)
    ]


@router.get("/retention/rules/versions/{version}")
def rules_version(version: int, services: ServicesDep, _admin: AdminDep) -> dict[str, Any]:
    return rulesets.at_version(services.db, version).to_json()


# -- preview and runs ------------------------------------------------------------


@router.get("/retention/preview")
def preview(
    services: ServicesDep,
    _admin: AdminDep,
    repository: str | None = None,
    kept: Annotated[bool, Query(description="Also list what rules keep.")] = False,
) -> dict[str, Any]:
    """Every version a run would delete now, the rule that selects it and the bytes."""
    return RetentionRunner(services).preview(repository).to_json(include_kept=kept)


@router.post("/retention/runs")
def start_run(
    services: ServicesDep,
    admin: AdminDep,
    repository: str | None = None,
    confirm: bool = False,
    wait: Annotated[bool, Query(description="Answer when the run has finished.")] = False,
) -> JSONResponse:
    """Start a run (202, then poll the run), or with ``wait=true`` answer with its result."""
    runner = RetentionRunner(services)
    run_id = runner.start(admin, repository=repository, confirm=confirm)
    assert run_id is not None  # only scheduled ticks may find their run taken
    if wait:
        runner.execute(run_id)
        return JSONResponse(_run(services, run_id, report=True), status_code=200)
    threading.Thread(
        target=runner.execute, args=(run_id,), name=f"retention-run-{run_id}", daemon=True
    ).start()
    return JSONResponse(_run(services, run_id, report=False), status_code=202)


@router.get("/retention/runs")
def list_runs(
    services: ServicesDep, _admin: AdminDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    table = RetentionRun.__table__  # type: ignore[attr-defined]
    columns = [table.c[name] for name in _RUN_FIELDS]
    with services.db.reader() as session:
        rows = session.connection().execute(
            select(*columns).order_by(table.c.id.desc()).limit(limit)
        )
        return [_json(dict(row._mapping)) for row in rows]


@router.get("/retention/runs/{run_id}")
def get_run(run_id: int, services: ServicesDep, _admin: AdminDep) -> dict[str, Any]:
    """A run with its report (deleted, vetoed, kept-by-rule, purged versions)."""
    return _run(services, run_id, report=True)


def _run(services: Any, run_id: int, *, report: bool) -> dict[str, Any]:
    table = RetentionRun.__table__  # type: ignore[attr-defined]
    with services.db.reader() as session:
        row = session.connection().execute(select(table).where(table.c.id == run_id)).first()
    if row is None:
        raise NotFound(f"retention run {run_id} does not exist")
    found = dict(row._mapping)
    body = _json({name: found[name] for name in _RUN_FIELDS})
    if report:
        body["report"] = found["report"]
    return body


def _json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}


# -- trash and restore -------------------------------------------------------------


@router.get("/retention/trash")
def list_trash(
    services: ServicesDep, _admin: AdminDep, repository: str | None = None
) -> list[dict[str, Any]]:
    """Soft-deleted versions that can still be restored, and when they will be purged."""
    table = RetentionTrash.__table__  # type: ignore[attr-defined]
    columns = [
        table.c[name]
        for name in (
            "id",
            "repository",
            "format",
            "package",
            "version",
            "run_id",
            "rule_id",
            "size",
            "deleted_at",
            "purge_after",
        )
    ]
    query = select(*columns).order_by(table.c.id)
    if repository is not None:
        query = query.where(table.c.repository == repository)
    with services.db.reader() as session:
        return [_json(dict(row._mapping)) for row in session.connection().execute(query)]


@router.post("/retention/restore")
def restore(body: RestoreIn, services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    """Bring a soft-deleted version back before it is purged."""
    restored = RetentionRunner(services).restore(admin, body.repository, body.package, body.version)
    return {
        "repository": restored.repository,
        "package": restored.package,
        "version": restored.version,
        "skipped": restored.skipped,
    }


# -- garbage collection and usage -----------------------------------------------------


@router.post("/gc")
def collect_garbage(
    services: ServicesDep,
    admin: AdminDep,
    dry_run: bool = False,
    grace_minutes: Annotated[float | None, Query(ge=0)] = None,
) -> dict[str, Any]:
    """Mark and sweep unreferenced blobs (safe while pushes run); bytes reclaimed, usage after."""
    collector = GarbageCollector(services)
    report = collector.collect(admin, dry_run=dry_run, grace_minutes=grace_minutes)
    return report.to_json()


@router.get("/usage")
def usage(services: ServicesDep, _admin: AdminDep) -> dict[str, Any]:
    """Bytes each repository holds (distinct blobs of its live versions, trash, staged links)."""
    with services.db.reader() as session:
        return {"repositories": repository_usage(session.connection())}
