"""Supply chain: SBOM documents, scan summaries, vulnerability findings, the OSV mirror.

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-28

Branches from 0003 beside 0004 (retention); ``upgrade`` applies every head.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def _version_fk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "version_id",
        sa.Integer(),
        sa.ForeignKey("versions.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "sbom_documents",
        sa.Column("id", sa.Integer(), primary_key=True),
        _version_fk(),
        sa.Column("file", sa.String(length=512), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("artifact_digest", sa.String(length=80), nullable=False),
        sa.Column(
            "blob_digest", sa.String(length=80), sa.ForeignKey("blobs.digest"), nullable=True
        ),
        sa.Column("media_type", sa.String(length=128), nullable=False),
        sa.Column("spec_version", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("components", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("version_id", "file", "source"),
    )
    op.create_index("ix_sbom_documents_version_id", "sbom_documents", ["version_id"])
    op.create_index("ix_sbom_documents_blob_digest", "sbom_documents", ["blob_digest"])
    op.create_table(
        "scan_summaries",
        sa.Column(
            "version_id",
            sa.Integer(),
            sa.ForeignKey("versions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("components", sa.Integer(), nullable=False),
        sa.Column("licenses", sa.JSON(), nullable=False),
        sa.Column("purls", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("ids", sa.JSON(), nullable=False),
        sa.Column("fixable", sa.JSON(), nullable=False),
        sa.Column("vulndb_revision", sa.String(length=64), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "vulnerability_findings",
        sa.Column("id", sa.Integer(), primary_key=True),
        _version_fk(),
        sa.Column("advisory_id", sa.String(length=128), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("purl", sa.String(length=1024), nullable=False),
        sa.Column("package", sa.String(length=512), nullable=False),
        sa.Column("installed", sa.String(length=256), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("fixed", sa.JSON(), nullable=False),
        sa.Column("summary", sa.String(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("version_id", "advisory_id", "purl"),
    )
    op.create_index(
        "ix_vulnerability_findings_version_id", "vulnerability_findings", ["version_id"]
    )
    op.create_table(
        "osv_advisories",
        sa.Column("id", sa.String(length=128), primary_key=True),
        sa.Column("modified", sa.String(length=40), nullable=False),
        sa.Column("published", sa.String(length=40), nullable=True),
        sa.Column("withdrawn", sa.String(length=40), nullable=True),
        sa.Column("summary", sa.String(), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("vector", sa.String(length=256), nullable=True),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("source", sa.String(length=256), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "osv_affected",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "advisory_id",
            sa.String(length=128),
            sa.ForeignKey("osv_advisories.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("ecosystem", sa.String(length=64), nullable=False),
        sa.Column("release", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("ranges", sa.JSON(), nullable=False),
        sa.Column("versions", sa.JSON(), nullable=False),
    )
    op.create_index("ix_osv_affected_advisory_id", "osv_affected", ["advisory_id"])
    op.create_index("ix_osv_affected_package", "osv_affected", ["ecosystem", "name"])
    op.create_table(
        "vulndb_imports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("revision", sa.String(length=64), nullable=False),
        sa.Column("imported_by", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    for table in (
        "vulndb_imports",
        "osv_affected",
        "osv_advisories",
        "vulnerability_findings",
        "scan_summaries",
        "sbom_documents",
    ):
        op.drop_table(table)
