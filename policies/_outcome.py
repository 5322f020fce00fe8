"""Private: turning what an engine got back into a :class:`Decision`.

Not public API. Both engines go through these functions, so the same policy
answer becomes the same decision whichever engine produced it, and every
failure becomes the same fail-closed deny.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.decision import ENGINE_UNAVAILABLE, INVALID_INPUT, NO_DECISION, Decision
from policies.errors import PolicyInputError
from policies.ids import random_uuid
from policies.inputs import input_digest


@dataclass(frozen=True)
class Stamp:
    """What every decision of one evaluation shares: engine, revision, start, input digest."""

    engine: str
    revision: str
    started_ns: int
    input_digest: str

    @classmethod
    def start(cls, engine: str, revision: str) -> Stamp:
        return cls(engine, revision, time.perf_counter_ns(), "")

    def with_digest(self, digest: str) -> Stamp:
        return Stamp(self.engine, self.revision, self.started_ns, digest)


def stamp_for(engine: str, revision: str, input_doc: Any) -> Stamp | Decision:
    """The stamp of a decision on ``input_doc``, digest included, or the deny if it is not JSON.

    The digest covers the whole input (what the audit log records), whatever
    part of it the engine goes on to evaluate. Hashing first also refuses a
    non-JSON input before any evaluation: the answer is then the
    ``policy input invalid`` deny, returned instead of a stamp.
    """
    stamp = Stamp.start(engine, revision)
    try:
        return stamp.with_digest(input_digest(input_doc))
    except PolicyInputError as error:
        return denied(stamp, INVALID_INPUT, str(error))


def decided(
    stamp: Stamp,
    allow: bool,
    reasons: tuple[str, ...],
    obligations: Mapping[str, Any],
    details: Mapping[str, Any] | None = None,
) -> Decision:
    """A decision stamped with a fresh id and the time spent since ``stamp.started_ns``."""
    return Decision(
        allow=allow,
        reasons=reasons,
        obligations=obligations,
        decision_id=str(random_uuid()),
        policy_revision=stamp.revision,
        engine=stamp.engine,
        elapsed_us=(time.perf_counter_ns() - stamp.started_ns) // 1000,
        input_digest=stamp.input_digest,
        details=details or {},
    )


def denied(stamp: Stamp, reason: str, error: str) -> Decision:
    """The fail-closed deny, with the cause kept in ``details`` for the audit log."""
    return decided(stamp, False, (reason,), {}, {"error": error})


def unavailable(stamp: Stamp, error: str) -> Decision:
    return denied(stamp, ENGINE_UNAVAILABLE, error)


def from_result(stamp: Stamp, result: Any, *, defined: bool = True) -> Decision:
    """The decision for the entry point's value; undefined or malformed denies ``no decision``."""
    if not defined:
        return denied(stamp, NO_DECISION, "data.registry.decision is undefined for this input")
    problem = _malformed(result)
    if problem:
        return denied(stamp, NO_DECISION, f"data.registry.decision is malformed: {problem}")
    return decided(
        stamp,
        result["allow"],
        tuple(result.get("reasons", ())),
        dict(result.get("obligations", {})),
    )


def _malformed(result: Any) -> str:
    """Why ``result`` is not ``{allow: bool, reasons: [str], obligations: {}}``, or ``""``."""
    if not isinstance(result, dict):
        return f"expected an object, got {type(result).__name__}"
    if not isinstance(result.get("allow"), bool):
        return "'allow' must be true or false"
    reasons = result.get("reasons", [])
    if not isinstance(reasons, list) or not all(isinstance(item, str) for item in reasons):
        return "'reasons' must be a list of strings"
    if not isinstance(result.get("obligations", {}), dict):
        return "'obligations' must be an object"
    return ""
