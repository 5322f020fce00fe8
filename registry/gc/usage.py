"""How many bytes each repository holds, by distinct blob.

A repository holds the blobs its live versions' files reference, the blobs
its OCI images link (pushed layers, staged or linked), and the blobs of its
versions in the retention trash (still restorable). Each blob counts once per
repository, whatever the number of versions sharing it; a blob two
repositories share counts in both (each would need it on its own).

The garbage collector reports this right after a sweep. The sweep lowers it
only where it removed stale OCI links (the blobs of deleted manifests, see
:mod:`registry.gc.links`); the blobs it deletes are ones nothing references.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, func, select, union

from registry.db.models import ArtifactFile, Blob, Package, Repository, Version
from registry.db.oci_models import OciBlobLink
from registry.retention.models import RetentionTrash, RetentionTrashBlob


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


_R, _P, _V, _F = _table(Repository), _table(Package), _table(Version), _table(ArtifactFile)
_B, _L = _table(Blob), _table(OciBlobLink)
_T, _TB = _table(RetentionTrash), _table(RetentionTrashBlob)


def repository_usage(conn: Connection) -> dict[str, dict[str, int]]:
    """``{repository: {"bytes": n, "blobs": n, "versions": n}}`` for every repository."""
    live = (
        select(_R.c.name.label("repository"), _F.c.blob_digest.label("digest"))
        .select_from(_F)
        .join(_V, _V.c.id == _F.c.version_id)
        .join(_P, _P.c.id == _V.c.package_id)
        .join(_R, _R.c.id == _P.c.repository_id)
    )
    linked = select(_R.c.name, _L.c.storage_digest).join(_R, _R.c.id == _L.c.repository_id)
    trashed = select(_T.c.repository, _TB.c.digest).join(_T, _T.c.id == _TB.c.trash_id)
    held = union(live, linked, trashed).subquery()
    rows = conn.execute(
        select(held.c.repository, func.count(), func.coalesce(func.sum(_B.c.size), 0))
        .select_from(held.join(_B, _B.c.digest == held.c.digest))
        .group_by(held.c.repository)
    ).all()
    versions: dict[str, int] = dict(
        conn.execute(
            select(_R.c.name, func.count(_V.c.id))
            .select_from(_R)
            .join(_P, _P.c.repository_id == _R.c.id)
            .join(_V, _V.c.package_id == _P.c.id)
            .group_by(_R.c.name)
        ).all()
    )
    usage = {
        name: {"bytes": 0, "blobs": 0, "versions": int(versions.get(name, 0))}
        for name in conn.execute(select(_R.c.name)).scalars()
    }
    for repository, blobs, size in rows:
        if repository in usage:
            usage[repository].update(bytes=int(size), blobs=int(blobs))
    return usage
