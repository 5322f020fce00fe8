"""The registry's metadata: repositories, artifacts, identities and role bindings.

Audit tables are not here: they belong to ``audit.schema`` and are created by
the same Alembic history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Repository(SQLModel, table=True):
    __tablename__ = "repositories"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    format: str = Field(max_length=32)
    kind: str = Field(default="hosted", max_length=16)
    description: str = ""
    labels: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Package(SQLModel, table=True):
    __tablename__ = "packages"
    __table_args__ = (UniqueConstraint("repository_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    repository_id: int = Field(foreign_key="repositories.id", index=True)
    name: str = Field(max_length=512)
    created_at: datetime = Field(default_factory=utcnow)


class Version(SQLModel, table=True):
    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("package_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    package_id: int = Field(foreign_key="packages.id", index=True)
    version: str = Field(max_length=256)
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str = ""
    downloads: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    last_pulled_at: datetime | None = None
    provenance: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Format metadata the format's clients need (summary, requires-python, deprecation, ...).
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Blob(SQLModel, table=True):
    __tablename__ = "blobs"

    digest: str = Field(primary_key=True, max_length=80)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    media_type: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class ArtifactFile(SQLModel, table=True):
    __tablename__ = "files"
    __table_args__ = (UniqueConstraint("version_id", "filename"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="versions.id", index=True)
    filename: str = Field(max_length=512)
    blob_digest: str = Field(foreign_key="blobs.digest", index=True, max_length=80)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    media_type: str = "application/octet-stream"
    created_at: datetime = Field(default_factory=utcnow)
    # Per-file format metadata (yanked reason, integrity, metadata-file digest, ...).
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Tag(SQLModel, table=True):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("package_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    package_id: int = Field(foreign_key="packages.id", index=True)
    name: str = Field(max_length=256)
    version_id: int = Field(foreign_key="versions.id", index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class Label(SQLModel, table=True):
    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("version_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="versions.id", index=True)
    key: str = Field(max_length=128)
    value: str = Field(default="", max_length=512)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=128)
    kind: str = Field(default="user", max_length=16)
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class Team(SQLModel, table=True):
    __tablename__ = "teams"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=128)
    created_at: datetime = Field(default_factory=utcnow)


class TeamMember(SQLModel, table=True):
    __tablename__ = "team_members"

    team_id: int = Field(foreign_key="teams.id", primary_key=True)
    user_id: int = Field(foreign_key="users.id", primary_key=True)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    name: str = Field(default="", max_length=128)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    expires_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class RoleBinding(SQLModel, table=True):
    __tablename__ = "role_bindings"

    id: int | None = Field(default=None, primary_key=True)
    role: str = Field(max_length=32)
    repository: str | None = Field(default=None, max_length=200)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="teams.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


# Feature tables register on the same metadata wherever the models are imported:
# OCI (manifests, tags, uploads), retention (rule sets, runs, trash, lease) and
# the supply chain (SBOM documents, scan summaries, findings, the OSV mirror).
from registry.db import oci_models  # noqa: E402
from registry.retention import models as retention_models  # noqa: E402
from registry.supplychain import models as supplychain_models  # noqa: E402

FEATURE_MODELS = (oci_models, retention_models, supplychain_models)
