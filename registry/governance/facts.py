"""Gather what the database knows about an action's repository and artifact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func
from sqlalchemy import select as select_core
from sqlmodel import Session, col, select

from registry.db.models import ArtifactFile, Label, Package, Repository, Tag, Version
from registry.errors import NotFound
from registry.governance.actions import Action
from registry.supplychain.facts import version_facts


@dataclass(frozen=True)
class Facts:
    """The repository and artifact facts of one action, ready for the policy input."""

    repository: dict[str, Any]
    artifact: dict[str, Any]


def find_repository(session: Session, name: str) -> Repository:
    repository = session.exec(select(Repository).where(Repository.name == name)).first()
    if repository is None:
        raise NotFound(f"repository {name!r} not found; create it with 'arbiter repo create'")
    return repository


def find_version(
    session: Session, repository: Repository, name: str, version: str
) -> Version | None:
    return session.exec(
        select(Version)
        .join(Package, col(Version.package_id) == col(Package.id))
        .where(
            Package.repository_id == repository.id,
            Package.name == name,
            Version.version == version,
        )
    ).first()


# gather() runs before every decision, so its statements are built once and
# run through Core (no ORM objects): four small indexed reads per action.
_REPOSITORIES, _PACKAGES = Repository.__table__, Package.__table__  # type: ignore[attr-defined]
_VERSIONS, _FILES = Version.__table__, ArtifactFile.__table__  # type: ignore[attr-defined]
_LABELS, _TAGS = Label.__table__, Tag.__table__  # type: ignore[attr-defined]
_REPOSITORY_FACTS = select_core(
    _REPOSITORIES.c.id,
    _REPOSITORIES.c.name,
    _REPOSITORIES.c.format,
    _REPOSITORIES.c.kind,
    _REPOSITORIES.c.labels,
).where(_REPOSITORIES.c.name == bindparam("name"))
_VERSION_FACTS = (
    select_core(
        _VERSIONS.c.id,
        _VERSIONS.c.created_at,
        _VERSIONS.c.last_pulled_at,
        _VERSIONS.c.downloads,
        _VERSIONS.c.provenance,
        select_core(func.coalesce(func.sum(_FILES.c.size), 0))
        .where(_FILES.c.version_id == _VERSIONS.c.id)
        .scalar_subquery()
        .label("size"),
    )
    .join(_PACKAGES, _PACKAGES.c.id == _VERSIONS.c.package_id)
    .where(
        _PACKAGES.c.repository_id == bindparam("repository_id"),
        _PACKAGES.c.name == bindparam("name"),
        _VERSIONS.c.version == bindparam("version"),
    )
)
_VERSION_LABELS = select_core(_LABELS.c.key, _LABELS.c.value).where(
    _LABELS.c.version_id == bindparam("version_id")
)
_VERSION_TAGS = select_core(_TAGS.c.name).where(_TAGS.c.version_id == bindparam("version_id"))


def gather(session: Session, action: Action) -> Facts:
    """Facts for ``action``; raises NotFound for an unknown repository."""
    conn = session.connection()
    resource = action.resource
    repository = conn.execute(_REPOSITORY_FACTS, {"name": resource.repository}).first()
    if repository is None:
        raise NotFound(
            f"repository {resource.repository!r} not found; create it with 'arbiter repo create'"
        )
    artifact: dict[str, Any] = {}
    if resource.name is not None and resource.version is not None:
        params = {"repository_id": repository.id, "name": resource.name}
        version = conn.execute(_VERSION_FACTS, {**params, "version": resource.version}).first()
        if version is not None:
            artifact = _version_facts(conn, version)
    artifact.update(action.artifact)
    repository_facts = {
        "name": repository.name,
        "format": repository.format,
        "kind": repository.kind,
        "labels": dict(repository.labels),
    }
    return Facts(repository=repository_facts, artifact=artifact)


def _version_facts(conn: Connection, version: Any) -> dict[str, Any]:
    labels = conn.execute(_VERSION_LABELS, {"version_id": version.id}).all()
    tags = conn.execute(_VERSION_TAGS, {"version_id": version.id}).scalars().all()
    return {
        "size": int(version.size),
        "created_at": _utc(version.created_at),
        "labels": {label.key: label.value for label in labels},
        "tags": sorted(tags),
        "last_pulled_at": _utc(version.last_pulled_at),
        "downloads": version.downloads,
        "provenance": dict(version.provenance),
        **version_facts(conn, version.id),  # SBOM summary, findings, scan.status
    }


def _utc(moment: datetime | None) -> datetime | None:
    """Aware UTC times: SQLite hands back naive ones for what was stored as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
