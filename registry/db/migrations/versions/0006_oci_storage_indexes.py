"""OCI: index the blob each manifest and link is stored as.

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-28

The garbage collector deletes the blobs of deleted manifests; each deleted
``blobs`` row has its foreign keys checked against these columns, and its
re-check looks them up. Without an index each check reads the whole table.
Branches from 0003 beside 0004 and 0005 (it touches only OCI tables).
"""

from alembic import op

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_oci_blob_links_storage_digest"),
        "oci_blob_links",
        ["storage_digest"],
        unique=False,
    )
    op.create_index(
        op.f("ix_oci_manifests_storage_digest"),
        "oci_manifests",
        ["storage_digest"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_oci_manifests_storage_digest"), table_name="oci_manifests")
    op.drop_index(op.f("ix_oci_blob_links_storage_digest"), table_name="oci_blob_links")
