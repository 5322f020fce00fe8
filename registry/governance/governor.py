"""The one road: facts, decision, audit and state change for every action.

Adapters call :meth:`Governor.govern` (for a read, :meth:`Governor.start_read`)
and nothing else to change or read an artifact. The decision is made outside
any write transaction (so a slow policy never holds the database's write
lock); the audit event and the state change then commit in one transaction,
so neither exists without the other.

Writes go through one :class:`~audit.GroupCommitter` per process: each action's
change and event run in their own savepoint, and the actions that arrive while
a COMMIT is in flight share the next one. Every action is still acknowledged
only once durable, but concurrent pulls no longer queue for SQLite's write lock
(whose busy handler sleeps in milliseconds) and pay one fsync each.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Connection
from sqlmodel import Session

from audit import AuditLog, GroupCommitter, LoopCommitter, PreparedDraft, Touch, prepare
from audit.events import Event, EventDraft
from policies.decision import Decision
from registry.auth.subject import Subject
from registry.db import Database
from registry.errors import ArbiterError, PolicyDenied
from registry.governance.actions import Action, RequestContext, Serving
from registry.governance.downloads import download
from registry.governance.facts import Facts, gather, gather_many
from registry.governance.inputs import policy_input

T = TypeVar("T")
R = TypeVar("R")
Apply = Callable[[Session], T]
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class PendingRead(Generic[R]):
    """A read whose audit event is queued: once ``recorded`` resolves, serve ``rows``
    or, for a read that was denied or cannot be served, raise ``error``."""

    rows: R
    recorded: Future[Event]
    error: ArbiterError | None = None

    def served(self) -> R:
        """The rows, or the error; call once ``recorded`` has resolved."""
        if self.error is not None:
            raise self.error
        return self.rows


@dataclass(frozen=True)
class Governed:
    """How one action of :meth:`Governor.govern_many` ended: allowed, denied or failed."""

    decision: Decision
    outcome: str
    error: str | None = None


class Appends(Protocol):
    """Where a read's event goes: the writer thread's committer or the loop's own."""

    def append(
        self, draft: EventDraft | PreparedDraft, *, touch: Touch | None = None
    ) -> Future[Event]: ...


class DecisionPoint(Protocol):
    def decide(self, input_doc: Mapping[str, Any]) -> Decision: ...

    def decide_many(self, input_docs: Sequence[Mapping[str, Any]]) -> list[Decision]: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class Governor:
    """Decides, records and applies governed actions."""

    def __init__(
        self,
        db: Database,
        policy: DecisionPoint,
        audit: AuditLog,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.policy = policy
        self.audit = audit
        self.clock = clock
        self._committer: GroupCommitter | None = None
        self._committer_lock = threading.Lock()
        self._loop_committers: dict[asyncio.AbstractEventLoop, LoopCommitter] = {}

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
        input_doc, decision = self._allowed(subject, action, context)
        draft = self._draft(subject, action, decision, input_doc, outcome="allowed")

        def change(session: Session) -> T | None:
            result = apply(session) if apply is not None else None
            self.audit.append(session.connection(), draft)
            return result

        try:
            result = self._write(change)
        except ArbiterError as error:
            self._queue(
                subject, action, decision, input_doc, outcome="failed", error=error.message
            ).result()
            raise
        return result

    def start_read(
        self,
        subject: Subject,
        context: RequestContext,
        read: Callable[[Connection], R],
        action: Callable[[R], Action],
        serving: Callable[[R], Serving] = lambda _rows: Serving(),
    ) -> PendingRead[R]:
        """Read rows, decide and queue the audit event of ``action(rows)``; don't wait.

        The road of the hottest requests (manifest GETs, index pages,
        archives). The rows and the action's facts come from one read
        connection, closed before the decision. Nothing changes but the audit
        log and, for a counted read, the version's download counter, so the
        event goes to a group committer (the running event loop's own, when
        called on one) as a plain append with that counter as its touch: the
        reads of one batch share one head lock, one insert and one counter
        ``executemany`` instead of a savepoint and a session each. A read that
        cannot be served (``serving(rows).error``) is audited as failed, as
        :meth:`govern` does when ``apply`` raises.

        The caller must not answer before ``recorded`` resolves: only then is
        the event durable. Returning instead of waiting lets an event loop
        await that commit without parking a thread on it, for a deny too (a
        flood of refused pulls must not stall the loop on their commits): a
        denied or unservable read comes back with its ``error`` set.
        """
        appends = self._read_appends()
        with self.db.read_engine.connect() as conn:
            rows = read(conn)
            governed = action(rows)
            facts = gather(conn, governed)
        found = serving(rows)
        input_doc = self._input(subject, governed, context, facts)
        decision = self.policy.decide(input_doc)
        if not decision.allow:
            denied = PolicyDenied(decision.reasons, anonymous=subject.is_anonymous)
            refusal = self._queue(
                subject, governed, decision, input_doc, outcome="denied", appends=appends
            )
            return PendingRead(rows, refusal, denied)
        if found.error is not None:
            error = found.error
            failure = self._queue(
                subject,
                governed,
                decision,
                input_doc,
                outcome="failed",
                error=error.message,
                appends=appends,
            )
            return PendingRead(rows, failure, error)
        allowed = prepare(self._draft(subject, governed, decision, input_doc, outcome="allowed"))
        touch = download(found.download) if found.download is not None else None
        return PendingRead(rows, appends.append(allowed, touch=touch))

    def _allowed(
        self, subject: Subject, action: Action, context: RequestContext, facts: Facts | None = None
    ) -> tuple[dict[str, Any], Decision]:
        """The input and an allowing decision; a deny is recorded and raised."""
        if facts is None:
            with self.db.read_engine.connect() as conn:
                facts = gather(conn, action)
        input_doc = self._input(subject, action, context, facts)
        decision = self.policy.decide(input_doc)
        if not decision.allow:
            self._queue(subject, action, decision, input_doc, outcome="denied").result()
            raise PolicyDenied(decision.reasons, anonymous=subject.is_anonymous)
        return input_doc, decision

    def govern_many(
        self,
        subject: Subject,
        actions: Sequence[Action],
        context: RequestContext,
        apply: Callable[[Session, Sequence[int]], Mapping[int, str]],
    ) -> list[Governed]:
        """Decide each action on its own facts; apply the allowed ones and record all at once.

        For bulk work (a retention pass decides tens of thousands of
        deletions): every action gets its own facts, its own decision and its
        own audit event, exactly as with :meth:`govern`, but the allowed
        changes and every event commit in one transaction (one unit of the
        group committer). ``apply`` receives the indexes of the allowed
        actions, carries them out together and returns ``{index: error}`` for
        those it could not carry out (and left unchanged): they are recorded
        ``failed``. If ``apply`` raises, nothing is applied, every event is
        still recorded (allowed ones as ``failed``) and the error propagates.
        """
        with self.db.read_engine.connect() as conn:
            facts = gather_many(conn, actions)
        input_docs = [
            self._input(subject, action, context, found)
            for action, found in zip(actions, facts, strict=True)
        ]
        decisions = self.policy.decide_many(input_docs)  # one engine hop for the chunk
        decided = list(zip(actions, input_docs, decisions, strict=True))
        allowed = [i for i, (_a, _doc, decision) in enumerate(decided) if decision.allow]

        def drafts(failures: Mapping[int, str]) -> list[EventDraft]:
            found = []
            for i, (action, input_doc, decision) in enumerate(decided):
                outcome = (
                    "denied" if not decision.allow else "failed" if i in failures else "allowed"
                )
                found.append(
                    self._draft(
                        subject, action, decision, input_doc, outcome=outcome, error=failures.get(i)
                    )
                )
            return found

        def change(session: Session) -> list[EventDraft]:
            failures = apply(session, allowed) if allowed else {}
            recorded = drafts(failures)
            self.audit.append_many(session.connection(), recorded)  # one head lock for all
            return recorded

        try:
            recorded = self._write(change)
        except Exception as error:
            reason = error.message if isinstance(error, ArbiterError) else type(error).__name__
            failed = drafts(dict.fromkeys(allowed, reason))
            self._write(
                lambda session: [self.audit.append(session.connection(), d) for d in failed]
            )
            raise
        return [
            Governed(decision=decision, outcome=draft.outcome, error=draft.details.get("error"))
            for (_action, _doc, decision), draft in zip(decided, recorded, strict=True)
        ]

    def permits(self, subject: Subject, action: Action, context: RequestContext) -> Decision:
        """Decide ``action`` without recording or applying anything.

        For narrowing credentials (which scopes a registry token may carry),
        never for acting: every action is still decided, audited and applied
        by :meth:`govern`. Raises NotFound for an unknown repository.
        """
        with self.db.read_engine.connect() as conn:
            facts = gather(conn, action)
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

        def change(session: Session) -> T:
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

        return self._write(change)

    def close(self) -> None:
        """Finish queued writes and stop the committer (before the database is disposed)."""
        with self._committer_lock:
            loop_committers, self._loop_committers = self._loop_committers, {}
        for loop_committer in loop_committers.values():
            loop_committer.close()  # may hand a batch to the writer thread: close that last
        with self._committer_lock:
            committer, self._committer = self._committer, None
        if committer is not None:
            committer.close()

    def _write(self, change: Callable[[Session], T]) -> T:
        """Run ``change`` durably: in its own savepoint of the committer's next transaction."""

        def unit(conn: Connection) -> T:
            with Session(
                bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
            ) as session:
                result = change(session)
                session.commit()  # releases the savepoint; the batch's COMMIT makes it durable
                return result

        return self._group_committer().run(unit)

    def _read_appends(self) -> Appends:
        """The running loop's own committer when called on an event loop, else the writer's.

        A read started on the loop (see ``registry.web.hops``) is awaited,
        never blocked on, so its event can commit on the loop's thread
        without a hand-off (see :mod:`audit.loop_committer`); a read started
        on a pool thread goes to the writer thread as before.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._group_committer()
        found = self._loop_committers.get(loop)
        if found is None:
            gate = self.db.write_gate
            found = LoopCommitter(
                loop,
                self.db.write_engine,
                log=self.audit,
                gate_within=gate.held_within if gate is not None else None,
                fallback=self._adopt if gate is not None else None,
            )
            with self._committer_lock:
                current = self._loop_committers
                done = [c for other, c in current.items() if other.is_closed()]
                live = {other: c for other, c in current.items() if not other.is_closed()}
                self._loop_committers = {**live, loop: found}
            for finished in done:  # a test client's loop, say: its batches are all flushed
                finished.close()
        return found

    def _adopt(self, appends: list[Any]) -> None:
        """A loop committer's batch it could not commit promptly: the writer thread's now."""
        self._group_committer().adopt(appends)

    def _group_committer(self) -> GroupCommitter:
        with self._committer_lock:
            if self._committer is None:
                gate = self.db.write_gate
                self._committer = GroupCommitter(
                    self.db.write_engine,
                    log=self.audit,
                    name="governor-commit",
                    gate=gate.held if gate is not None else None,
                )
            return self._committer

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

    def _queue(
        self,
        subject: Subject,
        action: Action,
        decision: Decision,
        input_doc: Mapping[str, Any],
        *,
        outcome: str,
        error: str | None = None,
        appends: Appends | None = None,
    ) -> Future[Event]:
        """Hand the event of a refused or failed action to the committer; durable once resolved."""
        draft = self._draft(subject, action, decision, input_doc, outcome=outcome, error=error)
        return (appends or self._group_committer()).append(prepare(draft))

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
