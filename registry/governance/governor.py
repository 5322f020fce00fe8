"""The one road: facts, decision, audit and state change for every action.

Adapters call :meth:`Governor.govern` and nothing else to change or read an
artifact. The decision is made outside any write transaction (so a slow policy
never holds the database's write lock); the audit event and the state change
then commit in one transaction, so neither exists without the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlmodel import Session

from audit.events import EventDraft
from policies.decision import Decision
from registry.auth.subject import Subject
from registry.db import Database
from registry.errors import ArbiterError, PolicyDenied
from registry.governance.actions import Action, RequestContext
from registry.governance.facts import Facts, gather
from registry.governance.inputs import policy_input

T = TypeVar("T")
Apply = Callable[[Session], T]
Clock = Callable[[], datetime]


class DecisionPoint(Protocol):
    def decide(self, input_doc: Mapping[str, Any]) -> Decision: ...


class AuditWriter(Protocol):
    def append(self, conn: Any, draft: EventDraft) -> Any: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class Governor:
    """Decides, records and applies governed actions."""

    def __init__(
        self,
        db: Database,
        policy: DecisionPoint,
        audit: AuditWriter,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.policy = policy
        self.audit = audit
        self.clock = clock

    def govern(
        self,
        subject: Subject,
        action: Action,
        context: RequestContext,
        apply: Apply[T] | None = None,
    ) -> T | None:
        """Decide ``action``; on allow run ``apply`` and the audit append in one transaction.

        A deny changes nothing, is audited with its reasons and raises
        :class:`PolicyDenied`. An error raised by ``apply`` rolls the change
        back and is audited as ``failed`` before it propagates.
        """
        with self.db.reader() as session:
            facts = gather(session, action)
        input_doc = self._input(subject, action, context, facts)
        decision = self.policy.decide(input_doc)
        if not decision.allow:
            self._record(subject, action, decision, input_doc, outcome="denied")
            raise PolicyDenied(decision.reasons, anonymous=subject.is_anonymous)
        try:
            with self.db.writer() as session:
                result = apply(session) if apply is not None else None
                self.audit.append(
                    session.connection(),
                    self._draft(subject, action, decision, input_doc, outcome="allowed"),
                )
        except ArbiterError as error:
            self._record(
                subject, action, decision, input_doc, outcome="failed", error=error.message
            )
            raise
        return result

    def permits(self, subject: Subject, action: Action, context: RequestContext) -> Decision:
        """Decide ``action`` without recording or applying anything.

        For narrowing credentials (which scopes a registry token may carry),
        never for acting: every action is still decided, audited and applied
        by :meth:`govern`. Raises NotFound for an unknown repository.
        """
        with self.db.reader() as session:
            facts = gather(session, action)
        return self.policy.decide(self._input(subject, action, context, facts))

    def record(
        self,
        subject: Subject,
        verb: str,
        resource: Mapping[str, Any],
        apply: Apply[T],
        details: Mapping[str, Any] | None = None,
    ) -> T:
        """Apply and audit a management change (users, tokens, repositories, ...)."""
        with self.db.writer() as session:
            result = apply(session)
            draft = EventDraft(
                actor=subject.to_actor(),
                action=verb,
                resource=dict(resource),
                outcome="committed",
                details=dict(details or {}),
            )
            self.audit.append(session.connection(), draft)
        return result

    def _input(
        self, subject: Subject, action: Action, context: RequestContext, facts: Facts
    ) -> dict[str, Any]:
        return policy_input(
            action=action,
            subject=subject,
            facts=facts,
            context=context,
            now=self.clock(),
        )

    def _record(
        self,
        subject: Subject,
        action: Action,
        decision: Decision,
        input_doc: Mapping[str, Any],
        *,
        outcome: str,
        error: str | None = None,
    ) -> None:
        with self.db.writer() as session:
            draft = self._draft(subject, action, decision, input_doc, outcome=outcome, error=error)
            self.audit.append(session.connection(), draft)

    @staticmethod
    def _draft(
        subject: Subject,
        action: Action,
        decision: Decision,
        input_doc: Mapping[str, Any],
        *,
        outcome: str,
        error: str | None = None,
    ) -> EventDraft:
        details: dict[str, Any] = {"stage": action.stage, "input": dict(input_doc)}
        details.update(action.details)
        if error is not None:
            details["error"] = error
        return EventDraft(
            actor=subject.to_actor(),
            action=action.verb,
            resource=action.resource.to_json(),
            outcome=outcome,
            decision=decision.to_json(),
            details=details,
        )
