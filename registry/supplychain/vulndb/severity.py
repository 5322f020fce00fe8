"""Severity of an advisory: the CVSS base score of its vector, else the database's label.

Scores are computed from the vectors (the ``cvss`` package implements the
v2, v3.x and v4.0 specifications); the newest CVSS version present wins.
Records without a vector (some GitHub advisories) fall back to
``database_specific.severity``; anything else is ``unknown``. Labels follow
the CVSS v3/v4 qualitative scale: none 0, low < 4, medium < 7, high < 9,
critical otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

CRITICAL, HIGH, MEDIUM, LOW, NONE, UNKNOWN = "critical", "high", "medium", "low", "none", "unknown"
LEVELS = (CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN)
_LABELS = {"CRITICAL": CRITICAL, "HIGH": HIGH, "MODERATE": MEDIUM, "MEDIUM": MEDIUM, "LOW": LOW}
_PREFERENCE = ("CVSS_V4", "CVSS_V3", "CVSS_V2")


@dataclass(frozen=True)
class Severity:
    label: str
    score: float | None = None
    vector: str | None = None


def label(score: float) -> str:
    if score >= 9.0:
        return CRITICAL
    if score >= 7.0:
        return HIGH
    if score >= 4.0:
        return MEDIUM
    if score > 0.0:
        return LOW
    return NONE


def base_score(kind: str, vector: str) -> float | None:
    """The base score of a CVSS vector; ``None`` when it is not one."""
    try:
        if kind == "CVSS_V4":
            return float(CVSS4(vector).base_score)
        if kind == "CVSS_V3":
            return float(CVSS3(vector).scores()[0])
        if kind == "CVSS_V2":
            return float(CVSS2(vector).scores()[0])
    except (CVSSError, ValueError, KeyError, IndexError, TypeError):
        return None
    return None


def of_record(record: Mapping[str, Any]) -> Severity:
    """The severity of an OSV record (its own vectors, then its affected entries')."""
    vectors: dict[str, str] = {}
    entries = list(record.get("severity") or [])
    for affected in record.get("affected") or []:
        if isinstance(affected, Mapping):
            entries.extend(affected.get("severity") or [])
    for entry in entries:
        if isinstance(entry, Mapping) and isinstance(entry.get("score"), str):
            vectors.setdefault(str(entry.get("type")), entry["score"])
    for kind in _PREFERENCE:
        vector = vectors.get(kind)
        if vector is None:
            continue
        score = base_score(kind, vector)
        if score is not None:
            return Severity(label(score), score, vector)
    database = record.get("database_specific")
    if isinstance(database, Mapping):
        found = _LABELS.get(str(database.get("severity", "")).upper())
        if found:
            return Severity(found)
    return Severity(UNKNOWN)
