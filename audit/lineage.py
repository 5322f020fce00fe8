"""The lifecycle of one artifact version, derived from its audit events.

Lineage is a view over events (nothing is stored besides the events): the
events whose resource has this ``repository`` + ``name`` + ``version``, read
through the ``ix_audit_events_artifact`` index, folded into steps, pull
statistics, provenance and relations, and rendered as JSON, Mermaid or
Graphviz DOT.

Actions are generic; the names below are what the registry emits (aliases in
parentheses are accepted). Detail keys are read when present and ignored when
absent, so a format that records less still yields a lineage:

=================  =========================================================
action             detail keys read (``details[...]``)
=================  =========================================================
push (upload,      ``provenance``: {``build_id``, ``pipeline``, ``commit``,
publish)           ``source``, ``source_repository``, ``builder``,
                   ``base_image``}; ``attestation``: an in-toto/SLSA
                   provenance summary ({``predicate_type``, ``builder``,
                   ``materials``, ...}); ``size``; ``stage``: ``request``
                   events are pre-checks, not pushes; ``source``: the
                   artifact this one was promoted or copied from
analyse (analyze,  ``sbom``: {``format``, ``components`` (count or list of
scan, sbom)        {``purl``}), ``purls``, ``licenses``}; ``findings`` or
                   ``vulnerabilities``: {``critical``, ``high``, ``medium``,
                   ``low``, ``ids``}
tag (retag,        ``tag`` or ``tags``; ``previous_digest`` (or
untag)             ``moved_from``) marks a re-tag
promote, copy      ``target``: {``repository``, ``name``, ``version``}
pull (download)    ``listing``: true for index listings (not counted);
                   teams from ``actor.teams`` or ``input.subject.teams``
quarantine,        ``reason``; ``label`` events with ``labels.quarantine``
release            (true/false) count too
retain             ``rule``, ``rule_name``, ``reason``, ``run_id``, ``verdict``
                   (``keep``/``delete``/``purge``/``veto``); an outcome of
                   ``denied`` or verdict ``veto`` is a veto; ``delete`` and
                   ``purge`` make the status ``deleted``; the decision's
                   ``policy_revision`` is kept with the step
retention.restore  ``rule``, ``run_id``, ``deleted_at``; status ``active`` again
delete (retire)    ``reason``
label              ``labels``
any                ``derived_from`` / ``base_image``: derived-from relation;
                   ``reason``, ``error``
=================  =========================================================

Events with outcome ``denied``, ``failed`` or ``error`` are attempts: listed
under ``attempts`` with their reasons, never as lifecycle steps (except
retention vetoes).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from audit._graph import dot, mermaid
from audit._rows import EVENT_COLUMNS, STREAM_BATCH, event_from_row
from audit.events import Event
from audit.schema import audit_events

FAILED_OUTCOMES = frozenset({"denied", "failed", "error"})
_KINDS = {
    "push": "pushed",
    "upload": "pushed",
    "publish": "pushed",
    "analyse": "analysed",
    "analyze": "analysed",
    "scan": "analysed",
    "sbom": "analysed",
    "tag": "tagged",
    "retag": "retagged",
    "untag": "untagged",
    "promote": "promoted",
    "copy": "copied",
    "quarantine": "quarantined",
    "release": "released",
    "retain": "retained",
    "delete": "deleted",
    "retire": "deleted",
    "label": "labelled",
    "retention.restore": "restored",
}
_PULLS = frozenset({"pull", "download"})


@dataclass(frozen=True)
class Step:
    """One thing that happened to the artifact."""

    kind: str
    seq: int
    time: str
    actor: str | None
    action: str
    outcome: str
    facts: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "action": self.action,
            "outcome": self.outcome,
            "facts": dict(self.facts),
        }


@dataclass(frozen=True)
class Pulls:
    """Who downloaded the artifact, how often, first and last."""

    count: int = 0
    first: str | None = None
    last: str | None = None
    by_subject: Mapping[str, int] = field(default_factory=dict)
    by_team: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "by_subject": dict(self.by_subject),
            "by_team": dict(self.by_team),
        }


@dataclass(frozen=True)
class Relation:
    """An edge to something outside this artifact version."""

    kind: str  # built-from, depends-on, derived-from, promoted-to, copied-to, promoted-from
    target: str
    seq: int

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "seq": self.seq}


@dataclass(frozen=True)
class Lineage:
    """Everything the audit log says about one artifact version."""

    repository: str
    name: str
    version: str
    status: str
    steps: tuple[Step, ...]
    attempts: tuple[Step, ...]
    pulls: Pulls
    provenance: Mapping[str, Any]
    relations: tuple[Relation, ...]
    events: int

    @property
    def ref(self) -> str:
        return f"{self.repository}/{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "artifact": {"repository": self.repository, "name": self.name, "version": self.version},
            "status": self.status,
            "events": self.events,
            "steps": [s.to_json() for s in self.steps],
            "attempts": [s.to_json() for s in self.attempts],
            "pulls": self.pulls.to_json(),
            "provenance": dict(self.provenance),
            "relations": [r.to_json() for r in self.relations],
        }

    def to_mermaid(self) -> str:
        """A Mermaid flowchart: the artifact, its steps in order, its relations."""
        return mermaid(self)

    def to_dot(self) -> str:
        """The same graph in Graphviz DOT."""
        return dot(self)


# -- folding events ----------------------------------------------------------


def _dict(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _teams(event: Event) -> list[str]:
    teams = event.actor.get("teams")
    if not isinstance(teams, list):
        subject = _dict(_dict(event.details.get("input")).get("subject"))
        teams = subject.get("teams")
    return [str(t) for t in teams] if isinstance(teams, list) else []


def _ref(target: Mapping[str, Any], fallback: Mapping[str, Any]) -> str:
    """``repo/name@version``; parts the target leaves out are this artifact's."""
    parts = [target.get(k) or fallback.get(k) or "?" for k in ("repository", "name", "version")]
    return f"{parts[0]}/{parts[1]}@{parts[2]}"


def _kind(event: Event) -> str:
    kind = _KINDS.get(event.action, event.action)
    details = event.details
    if kind == "tagged" and (details.get("previous_digest") or details.get("moved_from")):
        return "retagged"
    if kind == "labelled":
        labels = _dict(details.get("labels"))
        for key in ("quarantine", "quarantined"):
            if key in labels:
                return "quarantined" if labels[key] else "released"
    if kind == "retained" and (event.outcome == "denied" or details.get("verdict") == "veto"):
        return "vetoed"
    return kind


_FACT_KEYS = {
    "pushed": ("size", "provenance", "attestation", "source"),
    "analysed": ("sbom", "findings", "vulnerabilities"),
    "tagged": ("tag", "tags"),
    "retagged": ("tag", "tags", "previous_digest", "moved_from"),
    "untagged": ("tag", "tags"),
    "promoted": ("target",),
    "copied": ("target",),
    "quarantined": ("reason", "labels"),
    "released": ("reason", "labels"),
    "retained": ("rule", "rule_name", "verdict", "reason", "run_id"),
    "vetoed": ("rule", "rule_name", "verdict", "reason", "run_id"),
    "restored": ("rule", "run_id", "deleted_at"),
    "deleted": ("reason",),
    "labelled": ("labels",),
}


def _step(event: Event, kind: str) -> Step:
    facts = {k: event.details[k] for k in _FACT_KEYS.get(kind, ()) if k in event.details}
    if event.resource.get("digest"):
        facts["digest"] = event.resource["digest"]
    if event.decision is not None and event.decision.get("reasons"):
        facts["reasons"] = event.decision["reasons"]
    if kind in ("retained", "vetoed") and event.decision is not None:
        facts["policy_revision"] = event.decision.get("policy_revision")
    for key in ("error", "stage"):
        if key in event.details:
            facts[key] = event.details[key]
    actor = event.actor.get("id")
    return Step(kind, event.seq, event.time, None if actor is None else str(actor),
                event.action, event.outcome, facts)  # fmt: skip


def _purls(sbom: Mapping[str, Any]) -> list[str]:
    purls = sbom.get("purls")
    if isinstance(purls, list):
        return [str(p) for p in purls]
    components = sbom.get("components")
    if isinstance(components, list):
        return [str(c["purl"]) for c in components if isinstance(c, Mapping) and c.get("purl")]
    return []


def _relations(event: Event, kind: str) -> list[Relation]:
    details, out = event.details, []
    provenance = _dict(details.get("provenance"))
    if kind == "pushed":
        commit = provenance.get("commit")
        if commit:
            source = provenance.get("source_repository") or provenance.get("source")
            out.append(
                Relation(
                    "built-from", f"{source}@{commit}" if source else f"commit:{commit}", event.seq
                )
            )
        if isinstance(details.get("source"), Mapping):
            out.append(
                Relation("promoted-from", _ref(details["source"], event.resource), event.seq)
            )
    if kind == "analysed":
        out += [Relation("depends-on", p, event.seq) for p in _purls(_dict(details.get("sbom")))]
    if kind in ("promoted", "copied") and isinstance(details.get("target"), Mapping):
        label = "promoted-to" if kind == "promoted" else "copied-to"
        out.append(Relation(label, _ref(details["target"], event.resource), event.seq))
    for key in ("derived_from", "base_image"):
        base = details.get(key) or provenance.get(key)
        if base:
            out.append(Relation("derived-from", str(base), event.seq))
    return out


class _Fold:
    """Accumulates one artifact's events in seq order."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.attempts: list[Step] = []
        self.relations: dict[tuple[str, str], Relation] = {}
        self.provenance: dict[str, Any] = {}
        self.pull_times: list[str] = []
        self.subjects: Counter[str] = Counter()
        self.teams: Counter[str] = Counter()
        self.events = 0

    def add(self, event: Event) -> None:
        self.events += 1
        kind = _kind(event)
        if event.action in _PULLS:
            self._pull(event)
            return
        if event.outcome in FAILED_OUTCOMES and kind != "vetoed":
            self.attempts.append(_step(event, event.outcome))
            return
        if kind == "pushed" and event.details.get("stage") == "request":
            return  # the pre-check before bytes arrive; the content-stage event is the push
        self.steps.append(_step(event, kind))
        if kind == "pushed":
            self.provenance.update(_dict(event.details.get("provenance")))
            if isinstance(event.details.get("attestation"), Mapping):
                self.provenance["attestation"] = dict(event.details["attestation"])
        for relation in _relations(event, kind):
            self.relations.setdefault((relation.kind, relation.target), relation)

    def _pull(self, event: Event) -> None:
        if event.outcome in FAILED_OUTCOMES:
            self.attempts.append(_step(event, event.outcome))
            return
        if event.details.get("listing"):
            return
        self.pull_times.append(event.time)
        self.subjects[str(event.actor.get("id", "?"))] += 1
        self.teams.update(_teams(event))

    def status(self) -> str:
        status = "absent"
        for step in self.steps:
            if step.kind == "pushed":
                status = "active"
            elif step.kind == "quarantined":
                status = "quarantined"
            elif step.kind == "released" and status == "quarantined":
                status = "active"
            elif step.kind == "deleted" or (
                step.kind == "retained" and step.facts.get("verdict") in ("delete", "purge")
            ):
                status = "deleted"
            elif step.kind == "restored":
                status = "active"
        return status

    def pulls(self) -> Pulls:
        times = self.pull_times
        return Pulls(
            count=len(times),
            first=times[0] if times else None,
            last=times[-1] if times else None,
            by_subject=dict(self.subjects.most_common()),
            by_team=dict(self.teams.most_common()),
        )


def lineage_from_events(
    repository: str, name: str, version: str, events: Iterable[Event]
) -> Lineage:
    """Fold one artifact version's events (in seq order) into its lineage."""
    fold = _Fold()
    for event in events:
        fold.add(event)
    return Lineage(
        repository=repository,
        name=name,
        version=version,
        status=fold.status(),
        steps=tuple(fold.steps),
        attempts=tuple(fold.attempts),
        pulls=fold.pulls(),
        provenance=fold.provenance,
        relations=tuple(fold.relations.values()),
        events=fold.events,
    )


def build_lineage(conn: Connection, repository: str, name: str, version: str) -> Lineage:
    """The lineage of ``repository/name@version`` from the database."""
    c = audit_events.c
    query = (
        select(*EVENT_COLUMNS)
        .where(c.repository == repository, c.name == name, c.version == version)
        .order_by(c.seq)
        .execution_options(yield_per=STREAM_BATCH)
    )
    events = (event_from_row(row) for row in conn.execute(query))
    return lineage_from_events(repository, name, version, events)


def lineage_json(lineage: Lineage) -> str:
    """Pretty JSON text of a lineage (for the CLI)."""
    return json.dumps(lineage.to_json(), indent=2, sort_keys=True, ensure_ascii=False)
