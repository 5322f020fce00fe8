"""Group commit: many callers' units of work share one durable COMMIT.

With ``synchronous=FULL`` every SQLite commit waits for an fsync (~0.3 ms on
the reference machine), which caps one-transaction-per-event writers near
3,000 commits/s however fast the CPU is. :class:`GroupCommitter` runs the
work that arrives while a commit is in flight in the *next* single
transaction and acknowledges each caller only after that transaction has
committed. So:

* every acknowledged unit (and every audit event it appended) is durable;
* a unit that raises rolls back its own SAVEPOINT only; its caller receives
  the exception and the other units still commit;
* if the COMMIT itself fails, every caller in the batch receives that error
  and none of the work took effect.

Two kinds of work:

* :meth:`GroupCommitter.submit` takes a unit ``work(conn) -> T``: a state
  change plus its :meth:`AuditLog.append`, run on the committer's thread in
  its own savepoint;
* :meth:`GroupCommitter.append` takes a draft alone (a denied action, a policy
  reload), or with a *touch*: one statement and its parameters that must
  commit with the event (a read's download counter). Consecutive drafts in a
  batch become one :meth:`AuditLog.append_many`, and their touches one
  ``executemany`` per statement: the cheapest durable append there is. If
  that shared savepoint fails, each draft of the run is retried in its own,
  so only the caller whose touch or draft is at fault receives the error.

Batches form by themselves while a commit is in flight. When fewer callers
are queued than in recent batches, the committer waits up to ``max_delay``
(default 0.3 ms, about one fsync) for the rest, so that callers acknowledged
together stay together instead of splitting into cohorts that each pay a
commit. A lone caller never waits.

``gate``, if given, is entered around each transaction: a way to queue with
the committers of other processes that write the same database (see
``registry.db.write_gate``) rather than in the database's busy handler.

The committer keeps one connection of its own. Units must only use the
connection they are given and should be short: they hold the write lock.
Encode drafts with :func:`audit.prepare` in the calling thread to keep that
work off the committer. From asyncio, await
``asyncio.wrap_future(committer.submit(unit))``; an event loop that only
appends events and awaits them does better with its own
:class:`~audit.loop_committer.LoopCommitter`, which takes the appends it
cannot commit promptly back here (:meth:`GroupCommitter.adopt`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from sqlalchemy import Connection, Engine

from audit._batch import BatchWriter, Gate, Touch, _Append, _Pending, _Unit
from audit.chain import AuditLog, PreparedDraft
from audit.errors import AuditError
from audit.events import Event, EventDraft

T = TypeVar("T")


_STOP = object()


class GroupCommitter:
    """A writer thread that batches units of work into shared transactions."""

    def __init__(
        self,
        engine: Engine,
        *,
        log: AuditLog | None = None,
        max_batch: int = 512,
        max_delay: float = 0.0003,
        name: str = "audit-commit",
        gate: Gate | None = None,
    ) -> None:
        if max_batch < 1:
            raise AuditError("max_batch must be at least 1")
        self._writer = BatchWriter(engine, log or AuditLog(), gate)
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._recent: deque[int] = deque([1], maxlen=16)
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _put(self, item: _Pending) -> None:
        with self._lock:
            if self._closed:
                raise AuditError("the group committer is closed")
            self._queue.put(item)

    def submit(self, work: Callable[[Connection], T]) -> Future[T]:
        """Queue ``work``; the future resolves after its transaction commits."""
        future: Future[T] = Future()
        self._put(_Unit(work, future))
        return future

    def append(
        self, draft: EventDraft | PreparedDraft, *, touch: Touch | None = None
    ) -> Future[Event]:
        """Queue one event (and its ``touch`` statement); resolves to the event once durable."""
        pending = _Append.of(draft, touch)
        self._put(pending)
        return pending.future

    def adopt(self, appends: list[_Append]) -> None:
        """Commit appends another committer queued (their futures resolve as usual).

        All or none: a close between two of them would otherwise leave the
        first queued and the rest failed by the caller.
        """
        with self._lock:
            if self._closed:
                raise AuditError("the group committer is closed")
            for pending in appends:
                self._queue.put(pending)

    def run(self, work: Callable[[Connection], T], timeout: float | None = None) -> T:
        """Submit ``work`` and wait for its durable result (or its exception)."""
        return self.submit(work).result(timeout)

    @property
    def batches(self) -> int:
        """Transactions committed so far."""
        return self._writer.batches

    @property
    def units(self) -> int:
        """Units and appends committed so far."""
        return self._writer.units

    def close(self, timeout: float | None = None) -> None:
        """Finish the queued work, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)

    def __enter__(self) -> GroupCommitter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _run(self) -> None:
        stopping = False
        try:
            while not stopping:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch, stopping = self._gather(first)
                self._writer.commit([p for p in batch if isinstance(p, _Unit | _Append)])
        finally:
            self._writer.close()

    def _gather(self, first: object) -> tuple[list[object], bool]:
        """Take what is queued; True when asked to stop.

        When fewer callers are waiting than recently, wait up to ``max_delay``
        for the rest: callers acknowledged together come back together, and
        without the wait they split into cohorts that each pay a commit.
        """
        batch = [first]
        expected = min(self._max_batch, max(self._recent))
        deadline = time.monotonic() + self._max_delay
        while len(batch) < self._max_batch:
            remaining = deadline - time.monotonic() if len(batch) < expected else 0.0
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        self._recent.append(len(batch))
        return batch, False
