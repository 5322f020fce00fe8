"""OCI distribution: manifests, image blob links and resumable upload sessions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oci_manifests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("image", sa.String(length=512), nullable=False),
        sa.Column("digest", sa.String(length=160), nullable=False),
        sa.Column("storage_digest", sa.String(length=80), nullable=False),
        sa.Column("media_type", sa.String(length=255), nullable=False),
        sa.Column("artifact_type", sa.String(length=255), nullable=True),
        sa.Column("subject_digest", sa.String(length=160), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["storage_digest"], ["blobs.digest"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version_id"),
        sa.UniqueConstraint("repository_id", "image", "digest"),
    )
    op.create_index(
        op.f("ix_oci_manifests_repository_id"), "oci_manifests", ["repository_id"], unique=False
    )
    op.create_index(
        op.f("ix_oci_manifests_subject_digest"), "oci_manifests", ["subject_digest"], unique=False
    )
    op.create_table(
        "oci_blob_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("image", sa.String(length=512), nullable=False),
        sa.Column("digest", sa.String(length=160), nullable=False),
        sa.Column("storage_digest", sa.String(length=80), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["storage_digest"], ["blobs.digest"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository_id", "image", "digest"),
    )
    op.create_index(
        op.f("ix_oci_blob_links_repository_id"), "oci_blob_links", ["repository_id"], unique=False
    )
    op.create_index(op.f("ix_oci_blob_links_digest"), "oci_blob_links", ["digest"], unique=False)
    op.create_table(
        "oci_uploads",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("image", sa.String(length=512), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("upload_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_oci_uploads_repository_id"), "oci_uploads", ["repository_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("oci_uploads")
    op.drop_table("oci_blob_links")
    op.drop_table("oci_manifests")
