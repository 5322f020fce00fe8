"""Group commit on an event loop's own thread: one loop iteration's appends, one COMMIT.

:class:`~audit.committer.GroupCommitter` commits on a writer thread. For a
server whose event loop itself reads, decides and prepares each event (the
governed reads of ``registry.web.hops``), that thread was the costliest part
of a request: its Python ran between the loop's requests, each turn a GIL
hand-off, and each commit's futures came back through
``call_soon_threadsafe``. Measured on the 2-core loopback machine, manifest
GETs with 16 connections and two workers went from about 1,000 to about 800
µs of CPU each, and from 0.89-1.03x to 1.02-1.24x the reference registry's
rate, when the loop committed its own appends.

:meth:`LoopCommitter.append` queues an event and, once per loop iteration,
schedules a flush with ``call_soon``: every request the loop handled in
that iteration shares the transaction. The flush blocks the loop for the
COMMIT (one fsync, after the write gate); requests that arrive meanwhile
wait in the server's queue and form the next batch, so a slower disk makes
bigger batches rather than more commits.

The loop waits for the write gate only ``gate_wait`` (2 ms, a few of the
other committers' short transactions): behind a long one (a retention
sweep, a vulnerability import) the batch goes to ``fallback``, a writer
thread, and the loop carries on.

Only appends come here (a read changes nothing else), and only from the
loop's thread. A caller must await the future, never block on it: the
flush cannot run while the loop is blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager

from sqlalchemy import Engine

from audit._batch import BatchWriter, Touch, _Append
from audit.chain import AuditLog, PreparedDraft
from audit.errors import AuditError
from audit.events import Event, EventDraft

GATE_WAIT_S = 0.002


class LoopCommitter:
    """Appends from one event loop, committed in batches on that loop's thread."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        engine: Engine,
        *,
        log: AuditLog | None = None,
        gate_within: Callable[[float], AbstractContextManager[bool]] | None = None,
        gate_wait: float = GATE_WAIT_S,
        fallback: Callable[[list[_Append]], None] | None = None,
    ) -> None:
        if (gate_within is None) != (fallback is None):
            raise AuditError("a gated loop committer needs a fallback, and only it does")
        self.loop = loop
        self._writer = BatchWriter(engine, log or AuditLog())  # the gate is held around it
        self._gate_within = gate_within or _ungated
        self._gate_wait = gate_wait
        self._fallback = fallback
        self.handed_over = 0  # batches the fallback committed
        self._queued: list[_Append] = []
        self._scheduled = False
        self._closed = False

    @property
    def batches(self) -> int:
        """Transactions committed so far."""
        return self._writer.batches

    def append(
        self, draft: EventDraft | PreparedDraft, *, touch: Touch | None = None
    ) -> Future[Event]:
        """Queue one event (and its touch); resolves, on this loop, once durable."""
        if self._closed:
            raise AuditError("the loop committer is closed")
        pending = _Append.of(draft, touch)
        self._queued.append(pending)
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._flush)
        return pending.future

    def close(self) -> None:
        """Commit what is still queued, then drop the connection."""
        self._closed = True
        self._flush()
        self._writer.close()

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._queued = self._queued, []
        if not batch:
            return
        with self._gate_within(self._gate_wait) as held:
            if held:
                self._writer.commit(batch)
                return
        self._hand_over(batch)

    def _hand_over(self, batch: list[_Append]) -> None:
        """Behind a long transaction: let the writer thread wait for the gate instead."""
        assert self._fallback is not None  # a gate that can be busy comes with one
        self.handed_over += 1
        try:
            self._fallback(batch)
        except Exception as error:  # the writer thread is closed: fail, never hang
            for pending in batch:
                if pending.future.set_running_or_notify_cancel():
                    pending.future.set_exception(error)


@contextlib.contextmanager
def _ungated(_timeout: float) -> Iterator[bool]:
    """No gate (PostgreSQL, an in-memory database): always held."""
    yield True
