"""Match components (purls) against an :class:`~.index.AdvisoryIndex`.

A component is affected by an advisory's entry for its package when its
version is in the entry's explicit ``versions`` list or inside one of its
ranges under the ecosystem's own ordering (:mod:`.ranges`). Entries for a
distro release (``Debian:12``) only match components of that release when
both sides name one. Components without a version (declared dependencies)
are never matched: a range is not a version.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from registry.supplychain.vulndb import versions
from registry.supplychain.vulndb.ecosystems import PackageKey, keys
from registry.supplychain.vulndb.index import AdvisoryIndex, Entry


class Match(NamedTuple):
    """One advisory affecting one component (a tuple: a scan may make 100,000 of them)."""

    advisory_id: str
    aliases: tuple[str, ...]
    summary: str
    severity: str
    score: float | None
    purl: str
    package: str
    installed: str
    fixed: tuple[str, ...]

    @property
    def fixable(self) -> bool:
        return bool(self.fixed)


def match(index: AdvisoryIndex, purls: Iterable[str]) -> list[Match]:
    """Every (advisory, component) pair that applies, sorted by advisory id then purl."""
    found: dict[tuple[str, str], Match] = {}
    for purl in purls:
        for key in keys(purl):
            for entry in index.entries(key.ecosystem, key.name):
                fixed = _affects(entry, key)
                if fixed is None:
                    continue
                info = entry.advisory
                pair = (info.id, purl)
                if pair in found:
                    continue
                found[pair] = Match(
                    advisory_id=info.id,
                    aliases=info.aliases,
                    summary=info.summary,
                    severity=info.severity,
                    score=info.score,
                    purl=purl,
                    package=key.name,
                    installed=key.version,
                    fixed=tuple(fixed),
                )
    return [found[pair] for pair in sorted(found)]


def _affects(entry: Entry, key: PackageKey) -> list[str] | None:
    """The fixed versions when ``entry`` affects ``key``, else ``None``."""
    if entry.release and key.release and entry.release != key.release:
        return None
    if key.version in entry.versions:  # the record lists it: no range needs evaluating
        return entry.fixed_texts()
    for candidate in entry.ranges(key.ecosystem):
        version = versions.parse(candidate.scheme, key.version)
        if version is None:
            continue
        try:
            inside = candidate.contains(version)
        except TypeError:
            continue
        if inside:
            return candidate.fixed
    return None
