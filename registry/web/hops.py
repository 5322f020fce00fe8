"""Where the hot read paths run: on the event loop, or one plain pool hop off it.

A governed read (:meth:`Governor.start_read`) reads rows, decides, and queues
its audit event; the response waits for that event's group commit.

* With SQLite and an in-process policy engine, every step before the commit is
  bounded CPU work (an indexed read of a page-cached file, an evaluation held
  to the policy timeout), so it runs on the event loop itself, and so does
  its commit: the loop's own :class:`~audit.LoopCommitter` commits the events
  of one loop iteration together. Measured on the 2-core loopback machine
  (``wrk -c16`` on a manifest GET, one worker): 670 requests/s and 1.8 ms of
  CPU each through a thread, 1,100 and 1.1 ms inline; with two workers, the
  loop's own commit took a request from about 1.0 to 0.75 ms of CPU. The hop
  itself is cheap; what costs is the GIL passing between the loop, the pool
  threads, the engine and the committer several times per request.
* With PostgreSQL or the OPA server, the read or the decision waits on the
  network, so it takes one hop to a plain pool (``loop.run_in_executor``;
  starlette's ``run_in_threadpool`` adds anyio's capacity limiter and cancel
  scope, measured slower).

Uploads and management calls keep ``run_in_threadpool``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from registry.governance.governor import PendingRead
    from registry.services import Services

T = TypeVar("T")

# Enough threads that requests waiting on the audit log's group commit
# still let the next batch form behind them.
READ_THREADS = 32

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="governed-read")
        return _executor


async def off_loop(work: Callable[[], T]) -> T:
    """Run ``work`` on the read pool and await its result."""
    return await asyncio.get_running_loop().run_in_executor(_pool(), work)


async def governed(services: Services, start: Callable[[], PendingRead[T]]) -> T:
    """Run a governed read where :func:`reads_on_loop` says; its rows (or its error) once
    its event is durable."""
    pending = start() if reads_on_loop(services) else await off_loop(start)
    # Shielded: a client that goes away cancels this task, and a cancelled wait
    # would cancel the queued append itself; the decision is recorded regardless.
    await asyncio.shield(asyncio.wrap_future(pending.recorded))
    return pending.served()


def reads_on_loop(services: Services) -> bool:
    """True when a governed read never waits on the network (SQLite, in-process engine)."""
    settings = services.settings
    return services.db.dialect == "sqlite" and settings.policy_engine != "opa"
