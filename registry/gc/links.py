"""OCI blob links: live while a live manifest of their image needs them.

An OCI image holds a blob through an ``oci_blob_links`` row (a foreign key to
``blobs``), which outlives the manifests that referenced it: a manifest
deleted through ``DELETE /v2/<name>/manifests/<digest>`` re-stages the links
no other manifest of the image uses. Counting every link as a reference would
keep those blobs forever, so the collector counts only live links and removes
the stale ones. A link of ``digest`` in image ``R/I`` is live while

1. a live manifest of ``R/I`` references it: as config or layer (the
   manifest's ``files`` rows name it), or as its subject (referrers);
2. a child manifest a live index of ``R/I`` names references it, also when
   that child was deleted itself: the index still needs it, and its bytes,
   which the index's ``files`` row holds, tell what it references;
3. a version of ``R/I`` in the retention trash references its bytes (a
   restore brings the manifest back, and its blobs must be pullable again);
4. it is staged and ``R/I`` has an upload session open (a push in progress);
5. it was created or re-staged inside the grace period (a push whose
   manifest is not committed yet, a manifest deleted a moment ago).

Manifests are rows of their own (``oci_manifests``, their bytes held through
its foreign key and, for index children, the index's ``files`` rows): the
collector never removes them, so a manifest a live index references stays.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Table, and_, func, not_, select

from registry.blobs import BlobNotFound, BlobStore
from registry.db.models import ArtifactFile, Package, Repository, Version
from registry.db.oci_models import STAGED, OciBlobLink, OciManifest, OciUpload
from registry.retention.models import RetentionTrash, RetentionTrashBlob

# Media types of an index (OCI) and a manifest list (Docker), as the OCI adapter
# accepts them (registry/formats/oci/manifest.py): their files name child manifests.
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_FILE = "manifest.json"  # the file row of a manifest's own bytes
MAX_CHILD_SIZE = 4 * 1024 * 1024  # the adapter refuses larger manifests


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


_L, _M, _U = _table(OciBlobLink), _table(OciManifest), _table(OciUpload)
_F, _V, _P, _R = _table(ArtifactFile), _table(Version), _table(Package), _table(Repository)
_T, _TB = _table(RetentionTrash), _table(RetentionTrashBlob)

#: The column through which a link references a blob (the mark counts it only for live links).
STORAGE: Column[str] = _L.c.storage_digest


@dataclass(frozen=True)
class StaleLink:
    id: int
    repository_id: int
    repository: str
    image: str
    digest: str
    storage_digest: str

    @property
    def name(self) -> str:
        """``repository/image@digest``, as the report and the audit event list it."""
        return f"{self.repository}/{self.image}@{self.digest}"


def stale(
    conn: Connection, blobs: BlobStore, cutoff: datetime, ids: Collection[int] | None = None
) -> list[StaleLink]:
    """Links no rule above keeps (of ``ids`` only, when given: the re-check at delete time)."""
    owner = _R.alias("owner")
    query = (
        select(_L.c.id, _L.c.repository_id, owner.c.name, _L.c.image, _L.c.digest, STORAGE)
        .join(owner, owner.c.id == _L.c.repository_id)
        .where(_stale_clause(cutoff))
    )
    if ids is not None:
        query = query.where(_L.c.id.in_(list(ids)))
    found = [StaleLink(*row) for row in conn.execute(query.order_by(_L.c.id))]
    if not found:
        return []
    needed = _named_by_deleted_children(conn, blobs, {link.repository_id for link in found})
    return [link for link in found if (link.repository_id, link.image, link.digest) not in needed]


def held(conn: Connection, stale_links: Iterable[StaleLink]) -> set[str]:
    """Blobs at least one live link references (every link minus the stale ones)."""
    dropped = Counter(link.storage_digest for link in stale_links)
    counts = conn.execute(select(STORAGE, func.count()).group_by(STORAGE))
    return {digest for digest, links in counts if links > dropped[digest]}


def lock(conn: Connection, ids: list[int]) -> list[int]:
    """PostgreSQL: lock the links, skipping those a push holds (they are kept this time).

    SQLite's write transaction already excludes every writer, so all are returned.
    """
    if conn.dialect.name != "postgresql":
        return ids
    query = select(_L.c.id).where(_L.c.id.in_(ids)).order_by(_L.c.id)
    return list(conn.execute(query.with_for_update(skip_locked=True)).scalars())


def _stale_clause(cutoff: datetime) -> ColumnElement[bool]:
    in_image = and_(_P.c.repository_id == _L.c.repository_id, _P.c.name == _L.c.image)
    in_a_manifest = (
        select(_F.c.id)
        .join(_V, _V.c.id == _F.c.version_id)
        .join(_P, _P.c.id == _V.c.package_id)
        .where(_F.c.blob_digest == _L.c.storage_digest, _F.c.filename == _L.c.digest, in_image)
        .exists()
    )
    a_subject = select(_M.c.id).where(_M.c.subject_digest == _L.c.digest, _same_image(_M, _L))
    in_the_trash = (
        select(_TB.c.trash_id)
        .join(_T, _T.c.id == _TB.c.trash_id)
        .join(_R, _R.c.name == _T.c.repository)
        .where(
            _TB.c.digest == _L.c.storage_digest,
            _R.c.id == _L.c.repository_id,
            _T.c.package == _L.c.image,
        )
        .exists()
    )
    uploading = and_(_L.c.state == STAGED, select(_U.c.id).where(_same_image(_U, _L)).exists())
    return and_(
        _L.c.created_at < cutoff,
        not_(in_a_manifest),
        not_(a_subject.exists()),
        not_(in_the_trash),
        not_(uploading),
    )


def _same_image(rows: Any, other: Any) -> ColumnElement[bool]:
    """Rows of the same repository and image as ``other``'s (both with those two columns)."""
    return and_(rows.c.repository_id == other.c.repository_id, rows.c.image == other.c.image)


def _named_by_deleted_children(
    conn: Connection, blobs: BlobStore, repository_ids: Collection[int]
) -> set[tuple[int, str, str]]:
    """``(repository id, image, digest)`` of blobs deleted children of live indexes reference.

    Rare (a child deleted on its own while an index needs it), so read from
    the child's bytes rather than kept in a table of their own.
    """
    parent, child = _M.alias("parent"), _M.alias("child")
    still_there = select(child.c.id).where(
        _same_image(child, parent), child.c.digest == _F.c.filename
    )
    rows = conn.execute(
        select(parent.c.repository_id, parent.c.image, _F.c.blob_digest, _F.c.size)
        .join(_F, _F.c.version_id == parent.c.version_id)
        .where(
            parent.c.repository_id.in_(list(repository_ids)),
            parent.c.media_type.in_(INDEX_TYPES),
            _F.c.filename != MANIFEST_FILE,
            not_(still_there.exists()),
        )
        .distinct()
    ).all()
    needed: set[tuple[int, str, str]] = set()
    for repository_id, image, blob_digest, size in rows:
        if size <= MAX_CHILD_SIZE:
            needed.update((repository_id, image, d) for d in _references(blobs, blob_digest))
    return needed


def _references(blobs: BlobStore, digest: str) -> list[str]:
    """Digests of a manifest's config, layers and subject; nothing if it cannot be read."""
    try:
        document = json.loads(blobs.path_of(digest).read_bytes())
    except (BlobNotFound, OSError, UnicodeDecodeError, json.JSONDecodeError):
        return []
    if not isinstance(document, dict):
        return []
    layers = document.get("layers")
    found = [document.get("config"), document.get("subject")]
    found += layers if isinstance(layers, list) else []
    return [d["digest"] for d in found if isinstance(d, dict) and isinstance(d.get("digest"), str)]
