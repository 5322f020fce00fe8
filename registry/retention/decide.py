"""Carrying out a run's items: each deletion and each purge a governed ``retain`` action.

Items are handled in chunks: the chunk's facts are read together, each item is
decided on its own facts (:meth:`Governor.govern_many`), and the allowed
changes are applied with a few set-based statements in the same transaction
as every decision's audit event, one unit of the governor's group committer.
Several chunks are decided at once on the runner's thread pool, so the
committer folds their transactions into shared durable commits.

The outcome of every item is returned to the runner, which records vetoes,
skips and errors on the items; deletions and purges update their items inside
the transaction that carries them out, so a crash never leaves an item
claiming a change that did not happen (or the reverse).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlmodel import Session

from registry.auth.subject import Subject
from registry.governance import RETAIN, Action, Governor, RequestContext, Resource
from registry.retention import facts, inventory, trash
from registry.retention.models import (
    DELETED,
    ERROR,
    PENDING,
    PURGE_PENDING,
    PURGE_VETOED,
    PURGED,
    SKIPPED,
    VETOED,
    RetentionItem,
    RetentionTrash,
)

# The robot every retention decision is made for; maintainer grants retain.
RETENTION_SUBJECT = Subject(id="retention", kind="robot", roles=("maintainer",))
DELETE, PURGE = "delete", "purge"


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


_ITEMS, _TRASH = _table(RetentionItem), _table(RetentionTrash)
_MARK_DELETED = (
    update(_ITEMS)
    .where(_ITEMS.c.id == bindparam("item"))
    .values(
        verdict=DELETED,
        trash_id=bindparam("trash"),
        size=bindparam("bytes"),
        decided_at=bindparam("at"),
    )
)
_MARK_PURGED = (
    update(_ITEMS)
    .where(_ITEMS.c.id == bindparam("item"))
    .values(verdict=PURGED, size=bindparam("bytes"), decided_at=bindparam("at"))
)


@dataclass(frozen=True)
class Outcome:
    item_id: int
    verdict: str
    reasons: tuple[str, ...] = ()


class Decider:
    """Decides and carries out the items of one run."""

    def __init__(self, governor: Governor, run: dict[str, Any]) -> None:
        self.governor = governor
        self.run = run
        self.context = RequestContext(request_id=f"retention-run-{run['id']}", client="arbiter")

    def delete(
        self, items: Sequence[dict[str, Any]], now: datetime, recovery: timedelta
    ) -> list[Outcome]:
        """Move the allowed versions into the trash, recoverable for ``recovery``."""
        actions = [
            Action(
                verb=RETAIN,
                resource=_resource(item),
                details=self._details(item, DELETE),
                retention=retention,
            )
            for item, retention in zip(items, self._facts(items, DELETE, now), strict=True)
        ]

        def apply(session: Session, allowed: Sequence[int]) -> dict[int, str]:
            conn = session.connection()
            ids = [items[i]["id"] for i in allowed]
            open_ = set(
                conn.execute(
                    select(_ITEMS.c.id).where(_ITEMS.c.id.in_(ids), _ITEMS.c.verdict == PENDING)
                ).scalars()
            )
            failures = {i: "decided already" for i in allowed if items[i]["id"] not in open_}
            chosen = [i for i in allowed if i not in failures]
            requests = [
                trash.TrashRequest(
                    version_id=items[i]["version_id"],
                    repository=items[i]["repository"],
                    package=items[i]["package"],
                    version=items[i]["version"],
                    rule_id=items[i]["rule_id"],
                    rule_name=items[i]["rule_name"],
                )
                for i in chosen
            ]
            moved, gone = trash.trash_versions(
                conn, requests, run_id=self.run["id"], now=now, purge_after=now + recovery
            )
            marks = []
            for i in chosen:
                version_id = items[i]["version_id"]
                if version_id in gone:
                    failures[i] = gone[version_id]
                else:
                    done = moved[version_id]
                    marks.append(
                        {"item": items[i]["id"], "trash": done.trash_id, "bytes": done.size,
                         "at": now}
                    )  # fmt: skip
            if marks:
                conn.execute(_MARK_DELETED, marks)
            return failures

        return self._outcomes(items, actions, apply, DELETED, VETOED)

    def purge(self, items: Sequence[dict[str, Any]], now: datetime) -> list[Outcome]:
        """Forget trash entries whose recovery period is over (the policy may still veto)."""
        trash_ids = [item["trash_id"] for item in items]
        with self.governor.db.reader() as session:
            rows = session.connection().execute(
                select(_TRASH.c.id, _TRASH.c.snapshot).where(_TRASH.c.id.in_(trash_ids))
            )
            snapshots = {trash_id: snapshot for trash_id, snapshot in rows}
        present = [item for item in items if item["trash_id"] in snapshots]
        outcomes = [
            Outcome(item["id"], SKIPPED, ("restored or purged before its turn",))
            for item in items
            if item["trash_id"] not in snapshots
        ]
        if not present:
            return outcomes
        actions = [
            Action(
                verb=RETAIN,
                resource=_resource(item),
                details=self._details(item, PURGE),
                artifact=snapshot_facts(snapshots[item["trash_id"]]),
                retention=retention,
            )
            for item, retention in zip(present, self._facts(present, PURGE, now), strict=True)
        ]

        def apply(session: Session, allowed: Sequence[int]) -> dict[int, str]:
            conn = session.connection()
            sizes = trash.purge_many(conn, [present[i]["trash_id"] for i in allowed])
            failures = {
                i: "restored or purged meanwhile"
                for i in allowed
                if present[i]["trash_id"] not in sizes
            }
            marks = [
                {"item": present[i]["id"], "bytes": sizes[present[i]["trash_id"]], "at": now}
                for i in allowed
                if i not in failures
            ]
            if marks:
                conn.execute(_MARK_PURGED, marks)
            return failures

        return outcomes + self._outcomes(present, actions, apply, PURGED, PURGE_VETOED)

    def _outcomes(
        self,
        items: Sequence[dict[str, Any]],
        actions: list[Action],
        apply: Any,
        allowed: str,
        vetoed: str,
    ) -> list[Outcome]:
        try:
            governed = self.governor.govern_many(RETENTION_SUBJECT, actions, self.context, apply)
        except Exception as error:  # recorded as failed by the governor; the items stay open
            reason = f"{type(error).__name__}: {error}"
            return [Outcome(item["id"], ERROR, (reason,)) for item in items]
        found = []
        for item, result in zip(items, governed, strict=True):
            if result.outcome == "denied":
                found.append(Outcome(item["id"], vetoed, tuple(result.decision.reasons)))
            elif result.outcome == "failed":
                found.append(Outcome(item["id"], SKIPPED, (result.error or "failed",)))
            else:
                found.append(Outcome(item["id"], allowed))
        return found

    def _facts(
        self, items: Sequence[dict[str, Any]], phase: str, now: datetime
    ) -> list[dict[str, Any]]:
        """``input.retention`` of each item, read for the whole chunk at once."""
        refs = [(item["repository"], item["package"], item["version"]) for item in items]
        with self.governor.db.reader() as session:
            conn = session.connection()
            pulls = facts.team_pulls_many(conn, refs, now)
            referenced = {
                item["id"]: facts.referenced_by(conn, item["version_id"], item["version"])
                for item in items
                if phase == DELETE and item["format"] == "oci" and item["version_id"] is not None
            }
        return [
            {
                "phase": phase,
                "run_id": self.run["id"],
                "rule": {"id": item["rule_id"], "name": item["rule_name"]},
                "reason": item["reason"],
                "referenced_by": referenced.get(item["id"], []),
                "team_pulls": pulls.get(ref, []),
            }
            for item, ref in zip(items, refs, strict=True)
        ]

    def _details(self, item: dict[str, Any], phase: str) -> dict[str, Any]:
        return {
            "rule": item["rule_id"],
            "rule_name": item["rule_name"],
            "reason": item["reason"],
            "verdict": phase,
            "phase": phase,
            "run_id": self.run["id"],
            "rule_set_version": self.run["rule_set_version"],
            "size": int(item["size"]),
        }


OPEN_VERDICTS = (PENDING, PURGE_PENDING)


def _resource(item: dict[str, Any]) -> Resource:
    digest = item["version"] if item["format"] == "oci" else None
    return Resource(
        repository=item["repository"],
        format=item["format"],
        name=item["package"],
        version=item["version"],
        digest=digest,
    )


def snapshot_facts(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Artifact facts of a trashed version (its live rows are gone): labels, tags, times."""
    version = snapshot.get("version", {})
    children = {entry["table"]: entry["rows"] for entry in snapshot.get("children", [])}
    return {
        "labels": {row["key"]: row["value"] for row in children.get("labels", [])},
        "tags": sorted(row["name"] for row in children.get("tags", [])),
        "size": sum(int(row["size"]) for row in children.get("files", [])),
        "created_at": _aware(version.get("created_at")),
        "last_pulled_at": _aware(version.get("last_pulled_at")),
        "downloads": int(version.get("downloads") or 0),
        "provenance": version.get("provenance") or {},
    }


def _aware(text: str | None) -> datetime | None:
    if not text:
        return None
    return inventory.utc(datetime.fromisoformat(text))
