"""Group commit: many callers' units of work share one durable COMMIT.

With ``synchronous=FULL`` every SQLite commit waits for an fsync (~0.3 ms on
the reference machine), which caps one-transaction-per-event writers near
3,000 commits/s however fast the CPU is. :class:`GroupCommitter` runs the
units of work that arrive while a commit is in flight in the *next* single
transaction, each inside its own SAVEPOINT, and acknowledges every unit only
after that transaction has committed. So:

* every acknowledged unit (and the audit events it appended) is durable;
* a unit that raises rolls back its own savepoint only; its caller receives
  the exception and the other units still commit;
* if the COMMIT itself fails, every unit in the batch receives that error and
  none of them took effect.

Units run on the committer's thread, one at a time, and must only use the
connection they are given. Keep them short: they hold the write lock. From
asyncio, await ``asyncio.wrap_future(committer.submit(unit))``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from audit.errors import AuditError

T = TypeVar("T")
Unit = Callable[[Connection], T]


@dataclass
class _Pending:
    work: Callable[[Connection], Any]
    future: Future[Any]


_STOP = object()


class GroupCommitter:
    """A writer thread that batches units of work into shared transactions."""

    def __init__(self, engine: Engine, *, max_batch: int = 512, name: str = "audit-commit"):
        if max_batch < 1:
            raise AuditError("max_batch must be at least 1")
        self._engine = engine
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self.batches = 0
        self.units = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[Connection], T]) -> Future[T]:
        """Queue ``work``; the future resolves after its transaction commits."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise AuditError("the group committer is closed")
            self._queue.put(_Pending(work, future))
        return future

    def run(self, work: Callable[[Connection], T], timeout: float | None = None) -> T:
        """Submit ``work`` and wait for its durable result (or its exception)."""
        return self.submit(work).result(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Finish the queued units, then stop the thread."""
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
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._commit([p for p in batch if isinstance(p, _Pending)])

    def _commit(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if p.future.set_running_or_notify_cancel()]
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._engine.begin() as conn:
                outcomes = [self._apply(conn, p) for p in live]
        except BaseException as exc:  # the COMMIT failed: nothing took effect
            for pending in live:
                pending.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        self.units += len(live)
        for pending, (ok, value) in zip(live, outcomes, strict=True):
            if ok:
                pending.future.set_result(value)
            else:
                pending.future.set_exception(value)

    @staticmethod
    def _apply(conn: Connection, pending: _Pending) -> tuple[bool, Any]:
        try:
            with conn.begin_nested():
                return True, pending.work(conn)
        except Exception as exc:
            return False, exc
