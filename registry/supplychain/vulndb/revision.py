"""The revision of the vulnerability data: what findings were matched against.

Each import that adds, changes or withdraws a record makes a new revision
(recorded on its ``vulndb_imports`` row); imports that change nothing keep
the previous one. A version whose summary names an older revision is due for
a rescan.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, select

from registry.supplychain.models import VulnDbImport

NONE = ""


def current(conn: Connection) -> str:
    """The latest revision, ``""`` before the first import that changed anything."""
    table = VulnDbImport.__table__  # type: ignore[attr-defined]
    found = conn.execute(
        select(table.c.revision)
        .where(table.c.revision != NONE, table.c.finished_at.is_not(None))
        .order_by(table.c.id.desc())
        .limit(1)
    ).scalar()
    return str(found or NONE)


def next_revision(previous: str, changes: list[tuple[str, str]]) -> str:
    """A new revision from the previous one and the ``(id, digest)`` pairs that changed."""
    digest = hashlib.sha256(previous.encode())
    for advisory_id, record_digest in sorted(changes):
        digest.update(f"\n{advisory_id} {record_digest}".encode())
    return digest.hexdigest()[:32]
