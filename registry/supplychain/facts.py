"""What the policy reads about a stored version: its SBOM summary, findings and scan status.

Called by :func:`registry.governance.facts.gather` before every decision on
a version (pulls above all). The summary is one row of ``scan_summaries``:
``gather`` joins :data:`SUMMARY_COLUMNS` into its own statement and shapes
the row with :func:`summary_facts`, so it costs no statement of its own;
:func:`version_facts` reads it alone. A version nothing analysed yet (pushed
before analysis existed, or through a road without the hook) is
``scan.status = "pending"``: a policy may refuse what was never scanned.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select

from registry.supplychain.models import PENDING, ScanSummary
from registry.supplychain.vulndb.severity import LEVELS

# Imported by the governance layer itself: nothing here may import it back
# (registry.packages does, through its push helpers).

SUMMARIES = ScanSummary.__table__  # type: ignore[attr-defined]
"""The table to outer-join on ``version_id`` when selecting :data:`SUMMARY_COLUMNS`."""

SUMMARY_COLUMNS = (
    SUMMARIES.c.status.label("scan_status"),
    SUMMARIES.c.reason.label("scan_reason"),
    SUMMARIES.c.components.label("scan_components"),
    SUMMARIES.c.licenses.label("sbom_licenses"),
    SUMMARIES.c.purls.label("sbom_purls"),
    SUMMARIES.c.counts.label("vulnerability_counts"),
    SUMMARIES.c.ids.label("vulnerability_ids"),
    SUMMARIES.c.fixable.label("vulnerability_fixable"),
)
"""The summary's columns, named so they stand beside other tables' columns in one row."""

_SUMMARY = select(*SUMMARY_COLUMNS).where(SUMMARIES.c.version_id == bindparam("version_id"))


def summary_facts(row: Any) -> dict[str, Any]:
    """``sbom``, ``vulnerabilities`` and ``scan`` facts from a row with :data:`SUMMARY_COLUMNS`.

    ``row`` may come from an outer join that found no summary (every column
    ``None``): that version is pending.
    """
    if row is None or row.scan_status is None:
        return {"scan": {"status": PENDING, "reason": None, "components": 0}}
    found = row.vulnerability_counts
    return {
        "sbom": {"licenses": list(row.sbom_licenses), "purls": list(row.sbom_purls)},
        "vulnerabilities": {
            **{level: int(found.get(level, 0)) for level in LEVELS},
            "ids": list(row.vulnerability_ids),
            "fixable": list(row.vulnerability_fixable),
        },
        "scan": {
            "status": row.scan_status,
            "reason": row.scan_reason,
            "components": row.scan_components,
        },
    }


def version_facts(conn: Connection, version_id: int) -> dict[str, Any]:
    """``sbom``, ``vulnerabilities`` and ``scan`` facts of the version, in one read."""
    return summary_facts(conn.execute(_SUMMARY, {"version_id": version_id}).first())
