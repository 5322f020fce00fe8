"""Advisories by package, ready to match: ranges parsed once, versions as a set.

An :class:`AdvisoryIndex` is built from parsed records (tests, the bench) or
loaded from the database for just the packages an SBOM names, so matching an
artifact never loads the whole vulnerability database into memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, and_, or_, select

from registry.supplychain.models import OsvAdvisory, OsvAffected
from registry.supplychain.vulndb.ecosystems import PackageKey
from registry.supplychain.vulndb.ranges import Range, parse_ranges
from registry.supplychain.vulndb.records import Advisory

_LOAD_BATCH = 200


@dataclass(frozen=True)
class Info:
    """What a finding reports about its advisory."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    severity: str
    score: float | None


@dataclass
class Entry:
    """One affected package of one advisory."""

    advisory: Info
    release: str
    raw_ranges: list[dict[str, object]]
    versions: frozenset[str]
    _ranges: list[Range] | None = field(default=None, repr=False)
    _fixed: list[str] | None = field(default=None, repr=False)

    def fixed_texts(self) -> list[str]:
        """Every ``fixed`` version the entry's ranges name, without parsing them."""
        if self._fixed is None:
            self._fixed = sorted(
                {
                    str(event["fixed"])
                    for raw in self.raw_ranges
                    for event in raw.get("events", ())  # type: ignore[attr-defined]
                    if isinstance(event, dict) and "fixed" in event
                }
            )
        return self._fixed

    def ranges(self, ecosystem: str) -> list[Range]:
        if self._ranges is None:
            self._ranges = parse_ranges(ecosystem, self.raw_ranges)
        return self._ranges


class AdvisoryIndex:
    """``(ecosystem, name) -> [Entry]``."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], list[Entry]] = {}

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._entries.values())

    def entries(self, ecosystem: str, name: str) -> list[Entry]:
        return self._entries.get((ecosystem, name), [])

    def add(self, advisory: Advisory) -> None:
        if advisory.withdrawn:
            return
        info = Info(
            advisory.id,
            tuple(advisory.aliases),
            advisory.summary,
            advisory.severity.label,
            advisory.severity.score,
        )
        for affected in advisory.affected:
            self._put(
                affected.ecosystem,
                affected.name,
                Entry(info, affected.release, affected.ranges, frozenset(affected.versions)),
            )

    def _put(self, ecosystem: str, name: str, entry: Entry) -> None:
        self._entries.setdefault((ecosystem, name), []).append(entry)

    @classmethod
    def from_advisories(cls, advisories: Iterable[Advisory]) -> AdvisoryIndex:
        index = cls()
        for advisory in advisories:
            index.add(advisory)
        return index

    @classmethod
    def load(cls, conn: Connection, keys: Iterable[PackageKey]) -> AdvisoryIndex:
        """The advisories of just these packages, from the database."""
        index = cls()
        wanted = sorted({(key.ecosystem, key.name) for key in keys})
        affected, advisories = OsvAffected.__table__, OsvAdvisory.__table__  # type: ignore[attr-defined]
        infos: dict[str, Info] = {}
        for start in range(0, len(wanted), _LOAD_BATCH):
            batch = wanted[start : start + _LOAD_BATCH]
            condition = or_(
                *(and_(affected.c.ecosystem == e, affected.c.name == n) for e, n in batch)
            )
            rows = conn.execute(
                select(
                    affected.c.ecosystem,
                    affected.c.name,
                    affected.c.release,
                    affected.c.ranges,
                    affected.c.versions,
                    advisories.c.id,
                    advisories.c.aliases,
                    advisories.c.summary,
                    advisories.c.severity,
                    advisories.c.score,
                )
                .join(advisories, advisories.c.id == affected.c.advisory_id)
                .where(condition, advisories.c.withdrawn.is_(None))
            )
            for row in rows:
                info = infos.get(row.id)
                if info is None:
                    info = Info(row.id, tuple(row.aliases), row.summary, row.severity, row.score)
                    infos[row.id] = info
                index._put(
                    row.ecosystem,
                    row.name,
                    Entry(info, row.release, list(row.ranges), frozenset(row.versions)),
                )
        return index
