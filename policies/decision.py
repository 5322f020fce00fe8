"""What the decision point answers, and the one interface every engine offers.

The registry only ever sees a :class:`Decision`; it never learns whether regopy
or an OPA server produced it. Engines fail closed: they return a deny with the
reason :data:`ENGINE_UNAVAILABLE` or :data:`NO_DECISION` instead of raising, so
no caller can forget to handle an engine failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

ENGINE_UNAVAILABLE = "policy engine unavailable"
NO_DECISION = "no decision"
INVALID_INPUT = "policy input invalid"
ENTRYPOINT = "data.registry.decision"


@dataclass(frozen=True)
class Decision:
    """A policy decision plus the facts that let the audit log prove it later."""

    allow: bool
    reasons: tuple[str, ...]
    obligations: Mapping[str, Any]
    decision_id: str
    policy_revision: str
    engine: str
    elapsed_us: int
    input_digest: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The decision as it is recorded in an audit event.

        ``details`` (why an engine failed closed) appear only when present, so
        ordinary decisions keep the documented shape.
        """
        rendered: dict[str, Any] = {
            "allow": self.allow,
            "reasons": list(self.reasons),
            "obligations": dict(self.obligations),
            "decision_id": self.decision_id,
            "policy_revision": self.policy_revision,
            "engine": self.engine,
            "elapsed_us": self.elapsed_us,
            "input_digest": self.input_digest,
        }
        if self.details:
            rendered["details"] = dict(self.details)
        return rendered


class PolicyEngine(Protocol):
    """Evaluates ``data.registry.decision`` for one input document."""

    name: str

    @property
    def revision(self) -> str:
        """Digest of the policy bundle in force."""
        ...

    def decide(self, input_doc: Mapping[str, Any]) -> Decision:
        """Decide; never raises for engine or policy failures (fails closed)."""
        ...

    def decide_many(self, input_docs: Sequence[Mapping[str, Any]]) -> list[Decision]:
        """:meth:`decide` for each document, in order; for bulk work (retention)."""
        ...

    def close(self) -> None:
        """Release threads, connections or processes the engine holds."""
        ...
