"""Gather what the database knows about an action's repository and artifact."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Connection, and_, bindparam, func
from sqlalchemy import select as select_core
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, col, select

from registry.db.models import ArtifactFile, Label, Package, Repository, Tag, Version
from registry.db.prepared import PreparedQuery
from registry.errors import NotFound, WrongFormat
from registry.governance.actions import Action
from registry.supplychain.facts import SUMMARIES, SUMMARY_COLUMNS, summary_facts


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
# run through Core (no ORM objects): one read per action. Each statement costs
# far more in SQLAlchemy and the driver than in the database, so the version,
# its size, labels, tags and scan summary come back in the repository's row.
_REPOSITORIES, _PACKAGES = Repository.__table__, Package.__table__  # type: ignore[attr-defined]
_VERSIONS, _FILES = Version.__table__, ArtifactFile.__table__  # type: ignore[attr-defined]
_LABELS, _TAGS = Label.__table__, Tag.__table__  # type: ignore[attr-defined]


class _JsonObjectAgg(FunctionElement[Any]):
    """``json_object_agg(key, value)``; SQLite spells it ``json_group_object``."""

    type = JSON()
    name = "json_object_agg"
    inherit_cache = True


class _JsonAgg(FunctionElement[Any]):
    """``json_agg(value)``; SQLite spells it ``json_group_array``."""

    type = JSON()
    name = "json_agg"
    inherit_cache = True


@compiles(_JsonObjectAgg)
@compiles(_JsonAgg)
def _postgresql_json(element: FunctionElement[Any], compiler: Any, **kw: Any) -> str:
    return f"{element.name}({compiler.process(element.clauses, **kw)})"


@compiles(_JsonObjectAgg, "sqlite")
def _sqlite_json_object(element: FunctionElement[Any], compiler: Any, **kw: Any) -> str:
    return f"json_group_object({compiler.process(element.clauses, **kw)})"


@compiles(_JsonAgg, "sqlite")
def _sqlite_json_array(element: FunctionElement[Any], compiler: Any, **kw: Any) -> str:
    return f"json_group_array({compiler.process(element.clauses, **kw)})"


_REPOSITORY_COLUMNS = (
    _REPOSITORIES.c.id,
    _REPOSITORIES.c.name,
    _REPOSITORIES.c.format,
    _REPOSITORIES.c.kind,
    _REPOSITORIES.c.labels,
)
# Correlated on versions.id: aggregates over no rows are NULL on PostgreSQL.
_VERSION_COLUMNS = (
    _VERSIONS.c.id.label("version_id"),
    _VERSIONS.c.created_at,
    _VERSIONS.c.last_pulled_at,
    _VERSIONS.c.downloads,
    _VERSIONS.c.provenance,
    select_core(func.coalesce(func.sum(_FILES.c.size), 0))
    .where(_FILES.c.version_id == _VERSIONS.c.id)
    .scalar_subquery()
    .label("size"),
    select_core(_JsonObjectAgg(_LABELS.c.key, _LABELS.c.value))
    .where(_LABELS.c.version_id == _VERSIONS.c.id)
    .scalar_subquery()
    .label("version_labels"),
    select_core(_JsonAgg(_TAGS.c.name))
    .where(_TAGS.c.version_id == _VERSIONS.c.id)
    .scalar_subquery()
    .label("version_tags"),
    *SUMMARY_COLUMNS,
)
_REPOSITORY_FACTS = select_core(*_REPOSITORY_COLUMNS).where(
    _REPOSITORIES.c.name == bindparam("name")
)
# The repository row always comes back; the version columns are NULL when the
# version (or its package) does not exist. Both joins hit unique indexes.
_ARTIFACT_FACTS = (
    select_core(*_REPOSITORY_COLUMNS, *_VERSION_COLUMNS)
    .select_from(
        _REPOSITORIES.outerjoin(
            _PACKAGES,
            and_(
                _PACKAGES.c.repository_id == _REPOSITORIES.c.id,
                _PACKAGES.c.name == bindparam("package"),
            ),
        )
        .outerjoin(
            _VERSIONS,
            and_(
                _VERSIONS.c.package_id == _PACKAGES.c.id,
                _VERSIONS.c.version == bindparam("version"),
            ),
        )
        .outerjoin(SUMMARIES, SUMMARIES.c.version_id == _VERSIONS.c.id)
    )
    .where(_REPOSITORIES.c.name == bindparam("name"))
)


_ARTIFACT_READ = PreparedQuery(_ARTIFACT_FACTS)
_REPOSITORY_READ = PreparedQuery(_REPOSITORY_FACTS)


def gather(source: Session | Connection, action: Action) -> Facts:
    """Facts for ``action``; NotFound for an unknown repository, WrongFormat for another format.

    ``source`` is a session or a Core connection; either way this is one
    read. The format check comes before any decision, so a push into a
    repository of another format is refused before its body is read.
    """
    conn = source if isinstance(source, Connection) else source.connection()
    resource = action.resource
    row: Any
    versioned = resource.name is not None and resource.version is not None
    if versioned:
        params = {
            "name": resource.repository,
            "package": resource.name,
            "version": resource.version,
        }
        row = _ARTIFACT_READ.first(conn, params)
    else:
        row = _REPOSITORY_READ.first(conn, {"name": resource.repository})
    if row is None:
        raise NotFound(
            f"repository {resource.repository!r} not found; create it with 'arbiter repo create'"
        )
    if resource.format and resource.format != row.format:
        raise WrongFormat(
            f"repository {resource.repository!r} holds {row.format} artifacts, "
            f"not {resource.format}; use a {resource.format} repository"
        )
    artifact = _artifact_facts(row) if versioned and row.version_id is not None else {}
    artifact.update(action.artifact)
    return Facts(repository=_repository_facts(row), artifact=artifact)


def _repository_facts(row: Any) -> dict[str, Any]:
    return {"name": row.name, "format": row.format, "kind": row.kind, "labels": dict(row.labels)}


def _artifact_facts(row: Any) -> dict[str, Any]:
    """The artifact facts of a row with :data:`_VERSION_COLUMNS`."""
    return {
        "size": int(row.size),
        "created_at": _utc(row.created_at),
        "labels": dict(row.version_labels or {}),
        "tags": sorted(row.version_tags or ()),
        "last_pulled_at": _utc(row.last_pulled_at),
        "downloads": row.downloads,
        "provenance": dict(row.provenance),
        **summary_facts(row),  # SBOM summary, findings, scan.status
    }


# gather_many(): the same facts for a chunk of actions, one read per chunk.
_VERSIONS_OF = (
    select_core(
        _PACKAGES.c.name.label("package"),
        _VERSIONS.c.version,
        *_VERSION_COLUMNS,
    )
    .select_from(
        _PACKAGES.join(_VERSIONS, _VERSIONS.c.package_id == _PACKAGES.c.id).outerjoin(
            SUMMARIES, SUMMARIES.c.version_id == _VERSIONS.c.id
        )
    )
    .where(
        _PACKAGES.c.repository_id == bindparam("repository_id"),
        _PACKAGES.c.name.in_(bindparam("names", expanding=True)),
        _VERSIONS.c.version.in_(bindparam("versions", expanding=True)),
    )
)
_MANY = 500  # values per IN (...) list


def gather_many(source: Session | Connection, actions: Sequence[Action]) -> list[Facts]:
    """What :func:`gather` returns for each action, read with a few statements for all.

    For bulk work (a retention pass decides tens of thousands of actions),
    where a read per action would cost more than the decisions.
    """
    conn = source if isinstance(source, Connection) else source.connection()
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
            for version in conn.execute(_VERSIONS_OF, params):
                if (version.package, version.version) in pairs:
                    versions[(repository_id, version.package, version.version)] = version
    found = []
    for action in actions:
        resource = action.resource
        repository = repositories[resource.repository]
        found_version = versions.get((repository.id, resource.name or "", resource.version or ""))
        artifact = _artifact_facts(found_version) if found_version is not None else {}
        artifact.update(action.artifact)
        found.append(Facts(repository=_repository_facts(repository), artifact=artifact))
    return found


def _utc(moment: datetime | None) -> datetime | None:
    """Aware UTC times: SQLite hands back naive ones for what was stored as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
