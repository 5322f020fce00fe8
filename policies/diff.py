"""Impact analysis: what a candidate policy would have decided differently.

The audit log keeps the full input of every decided event, so the recorded
decisions can be replayed against a candidate policy directory before it goes
live. The report counts the changed decisions per action and per reason, and
lists each one, so an author sees who would lose (or gain) access and why.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policies.decision import PolicyEngine
from policies.errors import PolicyInputError


@dataclass(frozen=True)
class RecordedDecision:
    """A decision as the audit log recorded it, with the input it was made on."""

    input: Mapping[str, Any]
    allow: bool
    reasons: tuple[str, ...]
    decision_id: str = ""
    policy_revision: str = ""

    @property
    def action(self) -> str:
        return str(self.input.get("action", "?"))

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> RecordedDecision | None:
        """The decision in an audit event, or ``None`` for an event no policy decided."""
        decision = event.get("decision")
        details = event.get("details") or {}
        recorded_input = details.get("input") if isinstance(details, Mapping) else None
        if not isinstance(decision, Mapping) or not isinstance(recorded_input, Mapping):
            return None
        return cls(
            input=recorded_input,
            allow=bool(decision.get("allow")),
            reasons=tuple(decision.get("reasons", ())),
            decision_id=str(decision.get("decision_id", "")),
            policy_revision=str(decision.get("policy_revision", "")),
        )


@dataclass(frozen=True)
class ChangedDecision:
    """One recorded decision the candidate decides differently."""

    action: str
    decision_id: str
    was_allowed: bool
    now_allowed: bool
    reasons_before: tuple[str, ...]
    reasons_after: tuple[str, ...]

    @property
    def kind(self) -> str:
        if self.was_allowed and not self.now_allowed:
            return "newly denied"
        if self.now_allowed and not self.was_allowed:
            return "newly allowed"
        return "reasons changed"


@dataclass(frozen=True)
class ActionImpact:
    """Counts for one action."""

    replayed: int = 0
    newly_denied: int = 0
    newly_allowed: int = 0
    reasons_changed: int = 0

    @property
    def changed(self) -> int:
        return self.newly_denied + self.newly_allowed + self.reasons_changed


@dataclass(frozen=True)
class ImpactReport:
    """What would change if the candidate went live."""

    candidate_revision: str
    replayed: int
    changes: tuple[ChangedDecision, ...]
    by_action: Mapping[str, ActionImpact]
    reasons_added: Mapping[str, int] = field(default_factory=dict)
    reasons_removed: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "candidate_revision": self.candidate_revision,
            "replayed": self.replayed,
            "changed": len(self.changes),
            "by_action": {
                action: {**impact.__dict__, "changed": impact.changed}
                for action, impact in sorted(self.by_action.items())
            },
            "reasons_added": dict(self.reasons_added),
            "reasons_removed": dict(self.reasons_removed),
            "changes": [{**change.__dict__, "kind": change.kind} for change in self.changes],
        }


def diff_decisions(records: Iterable[RecordedDecision], candidate: PolicyEngine) -> ImpactReport:
    """Replay every record against ``candidate`` and report the differences."""
    replayed = 0
    changes: list[ChangedDecision] = []
    counts: dict[str, Counter[str]] = {}
    added: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    for record in records:
        replayed += 1
        tally = counts.setdefault(record.action, Counter())
        tally["replayed"] += 1
        change = _replay(record, candidate)
        if change is None:
            continue
        changes.append(change)
        tally[change.kind.replace(" ", "_")] += 1
        added.update(set(change.reasons_after) - set(change.reasons_before))
        removed.update(set(change.reasons_before) - set(change.reasons_after))
    return ImpactReport(
        candidate_revision=candidate.revision,
        replayed=replayed,
        changes=tuple(changes),
        by_action={action: ActionImpact(**tally) for action, tally in counts.items()},
        reasons_added=dict(added.most_common()),
        reasons_removed=dict(removed.most_common()),
    )


def read_recorded(path: Path, last: int | None = None) -> list[RecordedDecision]:
    """Decided events from a JSON Lines file of audit events, the last ``last`` of them.

    Raises :class:`PolicyInputError` naming the line that is not JSON.
    """
    records: list[RecordedDecision] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as error:
                raise PolicyInputError(f"{path}:{number}: not a JSON event: {error.msg}") from error
            record = RecordedDecision.from_event(event) if isinstance(event, dict) else None
            if record is not None:
                records.append(record)
    return records[-last:] if last else records


def _replay(record: RecordedDecision, candidate: PolicyEngine) -> ChangedDecision | None:
    decision = candidate.decide(record.input)
    same_reasons = set(decision.reasons) == set(record.reasons)
    if decision.allow == record.allow and same_reasons:
        return None
    return ChangedDecision(
        action=record.action,
        decision_id=record.decision_id,
        was_allowed=record.allow,
        now_allowed=decision.allow,
        reasons_before=record.reasons,
        reasons_after=decision.reasons,
    )
