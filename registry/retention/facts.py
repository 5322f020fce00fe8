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
        try:
            parsed = json.loads(details)
        except ValueError:
            continue
        if parsed.get("listing"):
            continue
        teams = parsed.get("input", {}).get("subject", {}).get("teams", [])
        for team in teams if isinstance(teams, list) else ():
            if isinstance(team, str) and team not in last:
                last[team] = time
    return [{"team": team, "last_pulled_at": at} for team, at in sorted(last.items())]
