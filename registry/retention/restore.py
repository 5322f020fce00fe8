"""Restore: bring a version retention deleted back from the trash, before the purge.

A management action of an administrator, audited as ``retention.restore``
(lineage shows the version active again) in the transaction that puts its
rows back; :func:`registry.retention.trash.restore` does the rows.
"""

from __future__ import annotations

from registry.auth.subject import Subject
from registry.errors import NotFound
from registry.governance import Governor
from registry.retention import trash


def restore_version(
    governor: Governor, subject: Subject, repository: str, package: str, version: str
) -> trash.Restored:
    """Restore the latest trashed copy of ``repository/package/version``."""
    with governor.db.reader() as session:
        row = trash.latest_trash(session.connection(), repository, package, version)
    if row is None:
        raise NotFound(
            f"{repository}/{package}/{version} is not in the trash: it was never deleted by "
            "retention, was restored already, or was purged"
        )
    resource = {"repository": repository, "format": row.format, "name": package, "version": version}
    details = {
        "trash_id": row.id,
        "rule": row.rule_id,
        "run_id": row.run_id,
        "deleted_at": row.deleted_at.isoformat(),
    }
    return governor.record(
        subject,
        "retention.restore",
        resource,
        lambda session: trash.restore(session.connection(), row.id),
        details,
    )
