"""Retention's own rows: versioned rule sets, runs and their items, the trash, the lease.

Registered on the same metadata as the core models (``registry.db.models``
imports this module at its end), so Alembic and the garbage collector's
reference discovery see them. The tables are created by migration ``0004``.

* ``retention_rule_sets``: one row per *version* of the rule set; a change
  never edits a row, it adds the next version (and an audit event), so every
  run names exactly the rules it applied.
* ``retention_runs`` / ``retention_items``: a run's state lives in the
  database, item by item, so a run interrupted by a crash is resumed by the
  next runner instead of being decided twice or forgotten.
* ``retention_trash`` / ``retention_trash_blobs``: soft-deleted versions. The
  rows a version was made of are kept as a snapshot until the recovery period
  ends; the blobs they reference stay referenced (through a foreign key the
  garbage collector honours) until the purge.
* ``retention_lease``: one row per lease name; whoever holds it unexpired is
  the only retention runner across every server process.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, String
from sqlmodel import Field, SQLModel

from registry.db.models import utcnow

# Run states. ``running`` with an expired lease means the runner died: resumable.
PLANNING = "planning"
RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"

# Item verdicts.
PENDING = "pending"  # chosen for deletion, not decided yet
DELETED = "deleted"  # allowed by the policy and moved to the trash
VETOED = "vetoed"  # the policy refused the deletion
KEPT = "kept"  # a rule retained it (protection, keep-last, ...)
SKIPPED = "skipped"  # gone or changed before its turn came
ERROR = "error"  # the deletion failed; the version is untouched
PURGE_PENDING = "purge-pending"
PURGED = "purged"
PURGE_VETOED = "purge-vetoed"


class RetentionRuleSet(SQLModel, table=True):
    __tablename__ = "retention_rule_sets"

    id: int | None = Field(default=None, primary_key=True)
    version: int = Field(unique=True, index=True)
    document: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(default="", max_length=128)
    comment: str = Field(default="", max_length=512)
    created_at: datetime = Field(default_factory=utcnow)


class RetentionRun(SQLModel, table=True):
    __tablename__ = "retention_runs"

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=PLANNING, max_length=16, index=True)
    trigger: str = Field(default="manual", max_length=16)
    # "schedule:<fire time>" for scheduled runs: unique, so two processes that
    # both fire the same cron tick start one run between them.
    schedule_key: str | None = Field(default=None, max_length=64, unique=True)
    repository: str | None = Field(default=None, max_length=200)
    rule_set_version: int = 0
    requested_by: str = Field(default="", max_length=128)
    confirmed: bool = False
    holder: str = Field(default="", max_length=128)
    attempts: int = 1
    deleted: int = 0
    vetoed: int = 0
    kept: int = 0
    purged: int = 0
    errors: int = 0
    bytes_deleted: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    bytes_purged: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    error: str = ""
    report: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class RetentionItem(SQLModel, table=True):
    __tablename__ = "retention_items"
    __table_args__ = (Index("ix_retention_items_run_verdict", "run_id", "verdict"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("retention_runs.id", ondelete="CASCADE"), nullable=False
        )
    )
    # Not a foreign key: the version row goes away when the item is carried out.
    version_id: int | None = None
    trash_id: int | None = None
    repository: str = Field(max_length=200)
    format: str = Field(default="", max_length=32)
    package: str = Field(max_length=512)
    version: str = Field(max_length=256)
    rule_id: str = Field(default="", max_length=64)
    rule_name: str = Field(default="", max_length=200)
    verdict: str = Field(default=PENDING, max_length=16)
    reason: str = Field(default="", max_length=512)  # why the rule selected or kept it
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    decided_at: datetime | None = None


class RetentionTrash(SQLModel, table=True):
    __tablename__ = "retention_trash"
    __table_args__ = (Index("ix_retention_trash_artifact", "repository", "package", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    repository: str = Field(max_length=200)
    format: str = Field(default="", max_length=32)
    package: str = Field(max_length=512)
    version: str = Field(max_length=256)
    run_id: int | None = None
    rule_id: str = Field(default="", max_length=64)
    rule_name: str = Field(default="", max_length=200)
    size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # {"table": [row, ...], ...}: every row the version was made of, as JSON.
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    deleted_at: datetime = Field(default_factory=utcnow)
    purge_after: datetime = Field(default_factory=utcnow, index=True)


class RetentionTrashBlob(SQLModel, table=True):
    """A blob a trashed version references: a foreign key, so nothing may remove it."""

    __tablename__ = "retention_trash_blobs"

    trash_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("retention_trash.id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    digest: str = Field(
        sa_column=Column(String(80), ForeignKey("blobs.digest"), primary_key=True, index=True)
    )


class RetentionLease(SQLModel, table=True):
    __tablename__ = "retention_lease"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(default="", max_length=128)
    run_id: int | None = None
    expires_at: datetime | None = None
