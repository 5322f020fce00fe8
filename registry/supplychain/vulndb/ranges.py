"""Is a version inside an OSV range? The algorithm of the OSV schema, per range.

Events are sorted by version (``introduced: "0"`` first) and walked in
order: an ``introduced`` at or below the version makes it affected, a
``fixed`` at or below it or a ``last_affected`` below it makes it unaffected
again; the state after the last event at or below the version is the
answer. A range whose events do not all parse is not evaluated (the record's
explicit ``versions`` list still applies), and ``GIT`` ranges never are:
they name commits, not versions.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from registry.supplychain.vulndb import versions

EVALUATED = frozenset({"SEMVER", "ECOSYSTEM"})
INTRODUCED, FIXED, LAST_AFFECTED = "introduced", "fixed", "last_affected"
_ORDER = {INTRODUCED: 0, FIXED: 1, LAST_AFFECTED: 2}


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    text: str
    version: Any  # None for introduced "0"


@dataclass(frozen=True, slots=True)
class Range:
    """One parsed range: events in version order, compared under ``scheme``."""

    scheme: str
    events: tuple[Event, ...]

    @property
    def fixed(self) -> list[str]:
        return [event.text for event in self.events if event.kind == FIXED]

    def contains(self, version: Any) -> bool:
        affected = False
        for event in self.events:
            if event.version is not None and event.version > version:
                break
            if event.kind == INTRODUCED:
                affected = True
            elif event.kind == FIXED or (event.kind == LAST_AFFECTED and event.version < version):
                affected = False
        return affected


def parse_range(ecosystem: str, raw: Mapping[str, Any]) -> Range | None:
    """The range in version order, or ``None`` when it cannot be evaluated."""
    kind = raw.get("type")
    if kind not in EVALUATED:
        return None
    scheme = versions.SEMVER if kind == "SEMVER" else ecosystem
    events: list[Event] = []
    for item in raw.get("events") or ():
        if type(item) is not dict:  # JSON objects; exact type checks keep this loop cheap
            continue
        for name, text in item.items():
            if name not in _ORDER or type(text) is not str:
                continue
            if name == INTRODUCED and text == "0":
                events.append(Event(name, text, None))
                continue
            parsed = versions.parse(scheme, text)
            if parsed is None:
                return None
            events.append(Event(name, text, parsed))
    if not events:
        return None
    try:
        keys = [_sort_key(event) for event in events]
        if any(a > b for a, b in itertools.pairwise(keys)):  # most ranges come in order
            events = [e for _, e in sorted(zip(keys, events, strict=True), key=lambda p: p[0])]
    except TypeError:
        return None
    return Range(scheme, tuple(events))


def _sort_key(event: Event) -> tuple[Any, ...]:
    """Versions ascending, ``introduced: "0"`` before everything, ties in event order."""
    if event.version is None:
        return (0, 0, _ORDER[event.kind])
    return (1, event.version, _ORDER[event.kind])


def parse_ranges(ecosystem: str, raws: Sequence[Mapping[str, Any]]) -> list[Range]:
    return [r for r in (parse_range(ecosystem, raw) for raw in raws) if r is not None]
