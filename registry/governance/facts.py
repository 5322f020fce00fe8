"""Gather what the database knows about an action's repository and artifact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from registry.db.models import ArtifactFile, Label, Package, Repository, Tag, Version
from registry.errors import NotFound
from registry.governance.actions import Action


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


def gather(session: Session, action: Action) -> Facts:
    """Facts for ``action``; raises NotFound for an unknown repository."""
    repository = find_repository(session, action.resource.repository)
    artifact: dict[str, Any] = {}
    resource = action.resource
    if resource.name is not None and resource.version is not None:
        version = find_version(session, repository, resource.name, resource.version)
        if version is not None:
            artifact = _version_facts(session, version)
    artifact.update(action.artifact)
    return Facts(repository=_repository_facts(repository), artifact=artifact)


def _repository_facts(repository: Repository) -> dict[str, Any]:
    return {
        "name": repository.name,
        "format": repository.format,
        "kind": repository.kind,
        "labels": dict(repository.labels),
    }


def _version_facts(session: Session, version: Version) -> dict[str, Any]:
    size = session.exec(
        select(func.coalesce(func.sum(ArtifactFile.size), 0)).where(
            ArtifactFile.version_id == version.id
        )
    ).one()
    labels = session.exec(select(Label).where(Label.version_id == version.id)).all()
    tags = session.exec(select(Tag.name).where(Tag.version_id == version.id)).all()
    return {
        "size": int(size),
        "created_at": _utc(version.created_at),
        "labels": {label.key: label.value for label in labels},
        "tags": sorted(tags),
        "last_pulled_at": _utc(version.last_pulled_at),
        "downloads": version.downloads,
        "provenance": dict(version.provenance),
    }


def _utc(moment: datetime | None) -> datetime | None:
    """Aware UTC times: SQLite hands back naive ones for what was stored as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
