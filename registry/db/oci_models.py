"""OCI distribution metadata beside the core artifact rows.

An OCI repository ``R`` holds images (``/v2/R/<image>``); each image is a
:class:`~registry.db.models.Package`, each manifest a
:class:`~registry.db.models.Version` whose version string is the manifest
digest, each tag a :class:`~registry.db.models.Tag`, and the blobs a manifest
references are its :class:`~registry.db.models.ArtifactFile` rows. Only what
the core rows cannot say lives here:

* ``oci_manifests``: media type, artifact type and subject of a manifest, so
  manifest GETs and the referrers API read one row;
* ``oci_blob_links``: which blobs an image holds. A blob uploaded or mounted
  but not yet referenced by an allowed manifest is ``staged``: pullable from
  that image (clients check their uploads) but no member of any artifact; a
  sweep removes staged links after a grace period;
* ``oci_uploads``: resumable upload sessions, bound to the repository, image
  and subject that started them.

Digests here are the client's (``sha256:`` or ``sha512:``); ``storage_digest``
is the sha256 the blob store keys the bytes by.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from registry.db.models import utcnow

DIGEST_LENGTH = 160  # "sha512:" + 128 hex digits, with room to spare

STAGED = "staged"
LINKED = "linked"


class OciManifest(SQLModel, table=True):
    __tablename__ = "oci_manifests"
    __table_args__ = (UniqueConstraint("repository_id", "image", "digest"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False, unique=True
        )
    )
    repository_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    image: str = Field(max_length=512)
    digest: str = Field(max_length=DIGEST_LENGTH)
    storage_digest: str = Field(foreign_key="blobs.digest", index=True, max_length=80)
    media_type: str = Field(max_length=255)
    artifact_type: str | None = Field(default=None, max_length=255)
    subject_digest: str | None = Field(default=None, index=True, max_length=DIGEST_LENGTH)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    annotations: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow)


class OciBlobLink(SQLModel, table=True):
    __tablename__ = "oci_blob_links"
    __table_args__ = (UniqueConstraint("repository_id", "image", "digest"),)

    id: int | None = Field(default=None, primary_key=True)
    repository_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    image: str = Field(max_length=512)
    digest: str = Field(max_length=DIGEST_LENGTH, index=True)
    storage_digest: str = Field(foreign_key="blobs.digest", index=True, max_length=80)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: str = Field(default=STAGED, max_length=16)
    created_by: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class OciUpload(SQLModel, table=True):
    __tablename__ = "oci_uploads"

    id: str = Field(primary_key=True, max_length=64)
    repository_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    image: str = Field(max_length=512)
    subject_id: str = Field(max_length=128)
    upload_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
