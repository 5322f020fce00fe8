"""The download counter a served read bumps: one statement, committed with its audit event.

Every counted read (a manifest, a wheel, a tarball) adds one to its version's
``downloads`` and sets ``last_pulled_at``; both are facts the policy and the
retention rules read. The statement is built once and handed to the group
committer as a *touch*, so the reads of one batch update their counters with
one ``executemany`` in the transaction that records their events.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, update

from audit import Touch
from registry.db.models import Version

_VERSIONS = Version.__table__  # type: ignore[attr-defined]
COUNT_DOWNLOAD = (
    update(_VERSIONS)
    .where(_VERSIONS.c.id == bindparam("version_id"))
    .values(downloads=_VERSIONS.c.downloads + 1, last_pulled_at=bindparam("pulled_at"))
)


def download(version_id: int) -> Touch:
    """The counter update for one served read of ``version_id``, stamped now."""
    return COUNT_DOWNLOAD, {"version_id": version_id, "pulled_at": datetime.now(UTC)}
