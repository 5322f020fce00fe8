"""What the policy needs to veto a retention deletion, beyond the artifact's own facts.

The governance layer already gives the policy the artifact's labels (legal
hold), tags (release tags), last pull and age. A retention decision also
needs what only a run knows or what is costly to gather for every action,
passed as ``input.retention`` (documented in ``rego/README.md``):

* ``rule``, ``reason``, ``phase`` (``delete`` or ``purge``) and ``run_id``;
* ``referenced_by``: live manifests (an OCI index, a manifest list) that
  name this manifest as a child, with their tags, so a release index keeps
  its platform manifests;
* ``team_pulls``: per team, the last allowed pull within
  :data:`PULL_HISTORY`, read from the audit log (at most
  :data:`MAX_PULL_EVENTS` events), so a policy can keep what a production
  team still pulls.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, select

from audit.schema import audit_events
from policies.inputs import rfc3339
from registry.db.models import ArtifactFile, Package, Repository, Tag, Version
from registry.db.oci_models import OciManifest

PULL_HISTORY = timedelta(days=365)
MAX_PULL_EVENTS = 1000


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


_R, _P, _V, _T = _table(Repository), _table(Package), _table(Version), _table(Tag)
_F, _M = _table(ArtifactFile), _table(OciManifest)


def child_manifests(conn: Connection) -> set[tuple[str, str, str]]:
    """(repository, image, digest) of every manifest another live manifest names as a child."""
    parent = _V.alias("parent")
    rows = conn.execute(
        select(_R.c.name, _M.c.image, _M.c.digest)
        .select_from(_M)
        .join(_R, _R.c.id == _M.c.repository_id)
        .join(_F, (_F.c.blob_digest == _M.c.storage_digest) & (_F.c.filename == _M.c.digest))
        .join(parent, (parent.c.id == _F.c.version_id) & (parent.c.id != _M.c.version_id))
        .join(_P, (_P.c.id == parent.c.package_id) & (_P.c.name == _M.c.image))
        .where(_P.c.repository_id == _M.c.repository_id)
        .distinct()
    )
    return {(repo, image, digest) for repo, image, digest in rows}


def referenced_by(conn: Connection, version_id: int, digest: str) -> list[dict[str, Any]]:
    """Live manifests in the same image naming this manifest (by ``digest``) as a child."""
    storage = conn.execute(
        select(_M.c.storage_digest, _M.c.repository_id, _M.c.image).where(
            _M.c.version_id == version_id
        )
    ).first()
    if storage is None:
        return []
    rows = conn.execute(
        select(_V.c.id, _V.c.version, _P.c.name, _R.c.name.label("repository"))
        .select_from(_F)
        .join(_V, _V.c.id == _F.c.version_id)
        .join(_P, _P.c.id == _V.c.package_id)
        .join(_R, _R.c.id == _P.c.repository_id)
        .where(
            _F.c.blob_digest == storage.storage_digest,
            _F.c.filename == digest,
            _V.c.id != version_id,
            _P.c.repository_id == storage.repository_id,
        )
    ).all()
    found = []
    for row in rows:
        tags = conn.execute(select(_T.c.name).where(_T.c.version_id == row.id)).scalars().all()
        found.append(
            {
                "repository": row.repository,
                "name": row.name,
                "version": row.version,
                "tags": sorted(tags),
            }
        )
    return sorted(found, key=lambda ref: ref["version"])


def team_pulls(
    conn: Connection, repository: str, name: str, version: str, now: datetime
) -> list[dict[str, str]]:
    """The last allowed pull per team within :data:`PULL_HISTORY`, newest events first."""
    since = rfc3339(now - PULL_HISTORY)
    rows = conn.execute(
        select(audit_events.c.time, audit_events.c.details)
        .where(
            audit_events.c.repository == repository,
            audit_events.c.name == name,
            audit_events.c.version == version,
            audit_events.c.action == "pull",
            audit_events.c.outcome == "allowed",
            audit_events.c.time >= since,
        )
        .order_by(audit_events.c.seq.desc())
        .limit(MAX_PULL_EVENTS)
    ).all()
    last: dict[str, str] = {}
    for time, details in rows:
        for team in _teams(details):
            last.setdefault(team, time)
    return [{"team": team, "last_pulled_at": at} for team, at in sorted(last.items())]


def team_pulls_many(
    conn: Connection, refs: Sequence[tuple[str, str, str]], now: datetime
) -> dict[tuple[str, str, str], list[dict[str, str]]]:
    """:func:`team_pulls` for many artifacts with one query per repository."""
    since = rfc3339(now - PULL_HISTORY)
    wanted = set(refs)
    by_repository: dict[str, set[tuple[str, str]]] = {}
    for repository, name, version in wanted:
        by_repository.setdefault(repository, set()).add((name, version))
    last: dict[tuple[str, str, str], dict[str, str]] = {}
    for repository, pairs in by_repository.items():
        names = sorted({name for name, _version in pairs})
        versions = sorted({version for _name, version in pairs})
        rows = conn.execute(
            select(
                audit_events.c.name,
                audit_events.c.version,
                audit_events.c.time,
                audit_events.c.details,
            )
            .where(
                audit_events.c.repository == repository,
                audit_events.c.name.in_(names),
                audit_events.c.version.in_(versions),
                audit_events.c.action == "pull",
                audit_events.c.outcome == "allowed",
                audit_events.c.time >= since,
            )
            .order_by(audit_events.c.seq.desc())
            .limit(MAX_PULL_EVENTS * len(pairs))
        )
        for name, version, time, details in rows:
            ref = (repository, name, version)
            if ref not in wanted:
                continue
            for team in _teams(details):
                last.setdefault(ref, {}).setdefault(team, time)
    return {
        ref: [{"team": team, "last_pulled_at": at} for team, at in sorted(teams.items())]
        for ref, teams in last.items()
    }


def _teams(details: str) -> list[str]:
    """Teams of the subject of a recorded pull (listings do not count)."""
    try:
        parsed = json.loads(details)
    except ValueError:
        return []
    if parsed.get("listing"):
        return []
    teams = parsed.get("input", {}).get("subject", {}).get("teams", [])
    return [team for team in teams if isinstance(team, str)] if isinstance(teams, list) else []
