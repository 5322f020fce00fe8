"""One plain thread pool for the hot read paths' hop off the event loop.

Every governed read blocks: it reads rows, waits for the policy and then for
the group commit that makes its audit event durable. Measured on the 2-core
loopback machine, starlette's ``run_in_threadpool`` (anyio's capacity limiter,
cancel scope and run-var lookups) cost the event loop more than
``loop.run_in_executor`` on a plain pool, and the event loop is what a busy
single worker saturates first. Uploads and management calls keep
``run_in_threadpool``; only the per-request read paths come here.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

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
