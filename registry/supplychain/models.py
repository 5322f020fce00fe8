"""Supply-chain rows: SBOM documents, scan summaries, findings and the OSV mirror.

Registered on the registry's metadata (``registry.db.models`` imports this
module at its end); the tables are created by migration ``0005``.

* ``sbom_documents``: one row per analysed file of a version (``generated``)
  and per SBOM its producer uploaded (``producer``). The document itself is a
  blob (content-addressed); the row keeps its summary (licenses, purls,
  component count) so facts, findings and rescans never re-read the blob.
* ``scan_summaries``: one row per version, the union of its documents and
  findings, read by the governance layer before every decision on the
  version (one primary-key lookup).
* ``vulnerability_findings``: advisories that affect a component of the
  version now; a rescan replaces the set and records what changed.
* ``osv_advisories`` / ``osv_affected``: the imported OSV records, and per
  affected package its ranges and versions, indexed by ecosystem and name.
* ``vulndb_imports``: one row per import; the latest import that changed
  anything names the *revision* findings were matched against.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from registry.db.models import utcnow

GENERATED = "generated"
PRODUCER = "producer"

COMPLETE = "complete"
FAILED = "failed"
PENDING = "pending"


class SbomDocument(SQLModel, table=True):
    __tablename__ = "sbom_documents"
    __table_args__ = (UniqueConstraint("version_id", "file", "source"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    file: str = Field(default="", max_length=512)
    source: str = Field(default=GENERATED, max_length=16)
    artifact_digest: str = Field(default="", max_length=80)
    blob_digest: str | None = Field(
        default=None,
        sa_column=Column(String(80), ForeignKey("blobs.digest"), nullable=True, index=True),
    )
    media_type: str = Field(default="", max_length=128)
    spec_version: str = Field(default="", max_length=8)
    status: str = Field(default=COMPLETE, max_length=16)
    reason: str | None = None
    components: int = 0
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(default="", max_length=128)
    created_at: datetime = Field(default_factory=utcnow)


class ScanSummary(SQLModel, table=True):
    __tablename__ = "scan_summaries"

    version_id: int = Field(
        sa_column=Column(Integer, ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True)
    )
    status: str = Field(default=PENDING, max_length=16)
    reason: str | None = None
    components: int = 0
    licenses: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    purls: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    counts: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    fixable: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    vulndb_revision: str = Field(default="", max_length=64)
    scanned_at: datetime = Field(default_factory=utcnow)


class Finding(SQLModel, table=True):
    __tablename__ = "vulnerability_findings"
    __table_args__ = (UniqueConstraint("version_id", "advisory_id", "purl"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    advisory_id: str = Field(max_length=128)
    aliases: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    purl: str = Field(max_length=1024)
    package: str = Field(default="", max_length=512)
    installed: str = Field(default="", max_length=256)
    severity: str = Field(default="unknown", max_length=16)
    score: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    fixed: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    summary: str = ""
    first_seen_at: datetime = Field(default_factory=utcnow)


class OsvAdvisory(SQLModel, table=True):
    __tablename__ = "osv_advisories"

    id: str = Field(primary_key=True, max_length=128)
    modified: str = Field(default="", max_length=40)
    published: str | None = Field(default=None, max_length=40)
    withdrawn: str | None = Field(default=None, max_length=40)
    summary: str = ""
    aliases: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    severity: str = Field(default="unknown", max_length=16)
    score: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    vector: str | None = Field(default=None, max_length=256)
    digest: str = Field(max_length=80)
    source: str = Field(default="", max_length=256)
    imported_at: datetime = Field(default_factory=utcnow)


class OsvAffected(SQLModel, table=True):
    __tablename__ = "osv_affected"
    __table_args__ = (Index("ix_osv_affected_package", "ecosystem", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    advisory_id: str = Field(
        sa_column=Column(
            String(128),
            ForeignKey("osv_advisories.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    ecosystem: str = Field(max_length=64)
    release: str = Field(default="", max_length=64)
    name: str = Field(max_length=512)
    ranges: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    versions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class VulnDbImport(SQLModel, table=True):
    __tablename__ = "vulndb_imports"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(default="", max_length=1024)
    records: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    revision: str = Field(default="", max_length=64)
    imported_by: str = Field(default="", max_length=128)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
