"""Gather what the database knows about an action's repository and artifact."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func
from sqlalchemy import select as select_core
from sqlmodel import Session, col, select

from registry.db.models import ArtifactFile, Label, Package, Repository, Tag, Version
from registry.errors import NotFound, WrongFormat
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
    """Facts for ``action``; NotFound for an unknown repository, WrongFormat for another format.

    The format check comes before any decision, so a push into a repository
    of another format is refused before its body is read.
    """
    conn = session.connection()
    resource = action.resource
    repository = conn.execute(_REPOSITORY_FACTS, {"name": resource.repository}).first()
    if repository is None:
        raise NotFound(
            f"repository {resource.repository!r} not found; create it with 'arbiter repo create'"
        )
    if resource.format and resource.format != repository.format:
        raise WrongFormat(
            f"repository {resource.repository!r} holds {repository.format} artifacts, "
            f"not {resource.format}; use a {resource.format} repository"
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
    return _artifact_facts(conn, version, {label.key: label.value for label in labels}, tags)


def _artifact_facts(
    conn: Connection, version: Any, labels: dict[str, str], tags: Sequence[str]
) -> dict[str, Any]:
    return {
        "size": int(version.size),
        "created_at": _utc(version.created_at),
        "labels": labels,
        "tags": sorted(tags),
        "last_pulled_at": _utc(version.last_pulled_at),
        "downloads": version.downloads,
        "provenance": dict(version.provenance),
        **version_facts(conn, version.id),  # SBOM summary, findings, scan.status
    }


# gather_many(): the same facts for a chunk of actions, in a few statements.
_VERSIONS_OF = (
    select_core(
        _PACKAGES.c.name.label("package"),
        _VERSIONS.c.version,
        *_VERSION_FACTS.selected_columns,
    )
    .join(_PACKAGES, _PACKAGES.c.id == _VERSIONS.c.package_id)
    .where(
        _PACKAGES.c.repository_id == bindparam("repository_id"),
        _PACKAGES.c.name.in_(bindparam("names", expanding=True)),
        _VERSIONS.c.version.in_(bindparam("versions", expanding=True)),
    )
)
_LABELS_OF = select_core(_LABELS.c.version_id, _LABELS.c.key, _LABELS.c.value).where(
    _LABELS.c.version_id.in_(bindparam("ids", expanding=True))
)
_TAGS_OF = select_core(_TAGS.c.version_id, _TAGS.c.name).where(
    _TAGS.c.version_id.in_(bindparam("ids", expanding=True))
)
_MANY = 500  # values per IN (...) list


def gather_many(session: Session, actions: Sequence[Action]) -> list[Facts]:
    """What :func:`gather` returns for each action, read with a few statements for all.

    For bulk work (a retention pass decides tens of thousands of actions),
    where four reads per action would cost more than the decisions.
    """
    conn = session.connection()
    repositories: dict[str, Any] = {}
    for name in sorted({action.resource.repository for action in actions}):
        row = conn.execute(_REPOSITORY_FACTS, {"name": name}).first()
        if row is None:
            raise NotFound(f"repository {name!r} not found; create it with 'arbiter repo create'")
        repositories[name] = row
    wanted: dict[int, set[tuple[str, str]]] = {}
    for action in actions:
        resource = action.resource
        if resource.name is not None and resource.version is not None:
            repository_id = repositories[resource.repository].id
            wanted.setdefault(repository_id, set()).add((resource.name, resource.version))
    versions: dict[tuple[int, str, str], Any] = {}
    for repository_id, pairs in wanted.items():
        ordered = sorted(pairs)
        for start in range(0, len(ordered), _MANY):
            chunk = ordered[start : start + _MANY]
            params = {
                "repository_id": repository_id,
                "names": sorted({name for name, _version in chunk}),
                "versions": sorted({version for _name, version in chunk}),
            }
            for row in conn.execute(_VERSIONS_OF, params):
                if (row.package, row.version) in pairs:
                    versions[(repository_id, row.package, row.version)] = row
    ids = sorted(row.id for row in versions.values())
    labels: dict[int, dict[str, str]] = {}
    tags: dict[int, list[str]] = {}
    for start in range(0, len(ids), _MANY):
        chunk = ids[start : start + _MANY]
        for version_id, key, value in conn.execute(_LABELS_OF, {"ids": chunk}):
            labels.setdefault(version_id, {})[key] = value
        for version_id, name in conn.execute(_TAGS_OF, {"ids": chunk}):
            tags.setdefault(version_id, []).append(name)
    found = []
    for action in actions:
        resource = action.resource
        repository = repositories[resource.repository]
        artifact: dict[str, Any] = {}
        version = versions.get((repository.id, resource.name or "", resource.version or ""))
        if version is not None:
            artifact = _artifact_facts(
                conn, version, dict(labels.get(version.id, {})), tags.get(version.id, [])
            )
        artifact.update(action.artifact)
        repository_facts = {
            "name": repository.name,
            "format": repository.format,
            "kind": repository.kind,
            "labels": dict(repository.labels),
        }
        found.append(Facts(repository=repository_facts, artifact=artifact))
    return found


def _utc(moment: datetime | None) -> datetime | None:
    """Aware UTC times: SQLite hands back naive ones for what was stored as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
