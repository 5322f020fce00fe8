"""What the policy reads about a stored version: its SBOM summary, findings and scan status.

Called by :func:`registry.governance.facts.gather` before every decision on
a version (pulls above all), so it is one primary-key read through a
prebuilt Core statement. A version nothing analysed yet (pushed before
analysis existed, or through a road without the hook) is
``scan.status = "pending"``: a policy may refuse what was never scanned.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select

from registry.supplychain.models import PENDING, ScanSummary
from registry.supplychain.vulndb.severity import LEVELS

# Imported by the governance layer itself: nothing here may import it back
# (registry.packages does, through its push helpers).

_SUMMARIES = ScanSummary.__table__  # type: ignore[attr-defined]
_SUMMARY = select(
    _SUMMARIES.c.status,
    _SUMMARIES.c.reason,
    _SUMMARIES.c.components,
    _SUMMARIES.c.licenses,
    _SUMMARIES.c.purls,
    _SUMMARIES.c.counts,
    _SUMMARIES.c.ids,
    _SUMMARIES.c.fixable,
).where(_SUMMARIES.c.version_id == bindparam("version_id"))


def version_facts(conn: Connection, version_id: int) -> dict[str, Any]:
    """``sbom``, ``vulnerabilities`` and ``scan`` facts of the version."""
    row = conn.execute(_SUMMARY, {"version_id": version_id}).first()
    if row is None:
        return {"scan": {"status": PENDING, "reason": None, "components": 0}}
    counts = {level: int(row.counts.get(level, 0)) for level in LEVELS}
    return {
        "sbom": {"licenses": list(row.licenses), "purls": list(row.purls)},
        "vulnerabilities": {**counts, "ids": list(row.ids), "fixable": list(row.fixable)},
        "scan": {"status": row.status, "reason": row.reason, "components": row.components},
    }
