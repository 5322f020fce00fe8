"""Retention: versioned rule sets, runs and items, the trash, the lease, the job store.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

``apscheduler_jobs`` has the exact shape APScheduler 3's SQLAlchemyJobStore
creates for itself (it checks before creating), so the schema stays owned by
this history.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_rule_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("comment", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_retention_rule_sets_version"), "retention_rule_sets", ["version"], unique=True
    )
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("schedule_key", sa.String(length=64), nullable=True),
        sa.Column("repository", sa.String(length=200), nullable=True),
        sa.Column("rule_set_version", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("vetoed", sa.Integer(), nullable=False),
        sa.Column("kept", sa.Integer(), nullable=False),
        sa.Column("purged", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("bytes_deleted", sa.BigInteger(), nullable=False),
        sa.Column("bytes_purged", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.String(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("schedule_key"),
    )
    op.create_index(op.f("ix_retention_runs_status"), "retention_runs", ["status"], unique=False)
    op.create_table(
        "retention_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.Column("trash_id", sa.Integer(), nullable=True),
        sa.Column("repository", sa.String(length=200), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("package", sa.String(length=512), nullable=False),
        sa.Column("version", sa.String(length=256), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("rule_name", sa.String(length=200), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=512), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["retention_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_retention_items_run_verdict", "retention_items", ["run_id", "verdict"], unique=False
    )
    op.create_table(
        "retention_trash",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository", sa.String(length=200), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("package", sa.String(length=512), nullable=False),
        sa.Column("version", sa.String(length=256), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("rule_name", sa.String(length=200), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purge_after", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_retention_trash_artifact",
        "retention_trash",
        ["repository", "package", "version"],
        unique=False,
    )
    op.create_index(
        op.f("ix_retention_trash_purge_after"), "retention_trash", ["purge_after"], unique=False
    )
    op.create_table(
        "retention_trash_blobs",
        sa.Column("trash_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(["trash_id"], ["retention_trash.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["digest"], ["blobs.digest"]),
        sa.PrimaryKeyConstraint("trash_id", "digest"),
    )
    op.create_index(
        op.f("ix_retention_trash_blobs_digest"), "retention_trash_blobs", ["digest"], unique=False
    )
    op.create_table(
        "retention_lease",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_apscheduler_jobs_next_run_time"),
        "apscheduler_jobs",
        ["next_run_time"],
        unique=False,
    )
    leases = sa.table(
        "retention_lease", sa.column("name", sa.String), sa.column("holder", sa.String)
    )
    op.bulk_insert(leases, [{"name": "retention", "holder": ""}, {"name": "gc", "holder": ""}])


def downgrade() -> None:
    op.drop_table("apscheduler_jobs")
    op.drop_table("retention_lease")
    op.drop_table("retention_trash_blobs")
    op.drop_table("retention_trash")
    op.drop_table("retention_items")
    op.drop_table("retention_runs")
    op.drop_table("retention_rule_sets")
