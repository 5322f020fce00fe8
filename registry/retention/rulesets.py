"""Stored rule sets: every change is the next version, audited with the whole document.

A rule set is never edited in place. Saving one adds version ``n + 1`` and an
audit event (``retention.rules.update``) carrying the document, in the same
transaction through :meth:`Governor.record`; each run records the version it
applied, so a report always names exactly the rules behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from registry.auth.subject import Subject
from registry.db import Database
from registry.errors import Conflict, NotFound
from registry.governance import Governor
from registry.retention.models import RetentionRuleSet
from registry.retention.rules import RuleSet


@dataclass(frozen=True)
class StoredRuleSet:
    """One version of the rule set (version 0: nothing stored yet, no rules)."""

    version: int
    rule_set: RuleSet
    created_by: str = ""
    comment: str = ""
    created_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created_by": self.created_by,
            "comment": self.comment,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            **self.rule_set.document(),
        }


def _stored(row: RetentionRuleSet) -> StoredRuleSet:
    return StoredRuleSet(
        version=row.version,
        rule_set=RuleSet.model_validate(row.document),
        created_by=row.created_by,
        comment=row.comment,
        created_at=row.created_at,
    )


def current(db: Database) -> StoredRuleSet:
    with db.reader() as session:
        row = session.exec(
            select(RetentionRuleSet).order_by(col(RetentionRuleSet.version).desc()).limit(1)
        ).first()
        return _stored(row) if row is not None else StoredRuleSet(version=0, rule_set=RuleSet())


def at_version(db: Database, version: int) -> StoredRuleSet:
    if version == 0:
        return StoredRuleSet(version=0, rule_set=RuleSet())
    with db.reader() as session:
        row = session.exec(
            select(RetentionRuleSet).where(RetentionRuleSet.version == version)
        ).first()
        if row is None:
            raise NotFound(f"rule set version {version} does not exist; see the rule set history")
        return _stored(row)


def history(db: Database) -> list[StoredRuleSet]:
    with db.reader() as session:
        rows = session.exec(
            select(RetentionRuleSet).order_by(col(RetentionRuleSet.version).desc())
        ).all()
        return [_stored(row) for row in rows]


def save(
    governor: Governor, subject: Subject, rule_set: RuleSet, comment: str = ""
) -> StoredRuleSet:
    """Store ``rule_set`` as the next version, audited; Conflict if another save won the race."""
    document = rule_set.document()

    def apply(session: Session) -> RetentionRuleSet:
        latest = session.exec(select(func.max(RetentionRuleSet.version))).one() or 0
        if latest != previous:
            raise Conflict("the rule set changed meanwhile; read it again and retry")
        row = RetentionRuleSet(
            version=latest + 1,
            document=document,
            created_by=subject.id,
            comment=comment,
            created_at=governor.clock(),
        )
        session.add(row)
        session.flush()
        return row

    previous = current(governor.db).version
    try:
        row = governor.record(
            subject,
            "retention.rules.update",
            {"retention_rules": str(previous + 1)},
            apply,
            {
                "version": previous + 1,
                "previous_version": previous,
                "rules": [rule.id for rule in rule_set.rules],
                "document": document,
                "comment": comment,
            },
        )
    except IntegrityError as error:
        raise Conflict("the rule set changed meanwhile; read it again and retry") from error
    return _stored(row)
