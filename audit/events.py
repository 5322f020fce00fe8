"""Audit event types: a draft the caller fills, and the sealed event in the chain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
