"""Audit event types: a draft the caller fills, and the sealed event in the chain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from audit.canonical import canonical_json, event_body, sha256_hex

#: ``prev_hash`` of the first event (seq 1).
GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class EventDraft:
    """What a caller knows about an action before the log seals it.

    ``decision`` is the policy decision as :meth:`policies.Decision.to_json`
    renders it (``None`` for events no policy decides, such as a policy reload).
    ``outcome`` says what happened: ``allowed``/``denied`` for decisions,
    ``committed``, ``failed`` ... for the change itself.
    """

    actor: Mapping[str, Any]
    action: str
    resource: Mapping[str, Any]
    outcome: str
    decision: Mapping[str, Any] | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """A sealed event: ``hash`` is SHA-256 over RFC 8785 JSON of all other fields."""

    seq: int
    time: str
    actor: Mapping[str, Any]
    action: str
    resource: Mapping[str, Any]
    decision: Mapping[str, Any] | None
    outcome: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """The event as plain JSON-ready data, ``hash`` included."""
        return {
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "action": self.action,
            "resource": self.resource,
            "decision": self.decision,
            "outcome": self.outcome,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    def _body(self, *, with_hash: bool) -> str:
        return event_body(
            seq=self.seq,
            time=self.time,
            actor=canonical_json(dict(self.actor)),
            action=self.action,
            resource=canonical_json(dict(self.resource)),
            decision=canonical_json(None if self.decision is None else dict(self.decision)),
            outcome=self.outcome,
            details=canonical_json(dict(self.details)),
            prev_hash=self.prev_hash,
            hash=self.hash if with_hash else None,
        )

    def to_json(self) -> str:
        """RFC 8785 JSON of the whole event, ``hash`` included (one export line)."""
        return self._body(with_hash=True)

    def computed_hash(self) -> str:
        """Recompute ``hash`` from the other fields (equal to ``hash`` when intact)."""
        return sha256_hex(self._body(with_hash=False))
