"""One writer at a time across the worker processes of a SQLite database, without polling.

SQLite lets one transaction write at a time. A ``BEGIN IMMEDIATE`` that finds
the lock taken goes to the busy handler, which sleeps 1, 2, 5, 10, ... ms
between tries whatever the holder is doing. With two workers each committing
a batch of audit events every millisecond or so, those sleeps were most of a
request's latency: manifest GETs at 16 connections went from about 1,000 to
1,600 per second on the 2-core loopback machine once each worker's group
committer took this gate first. An ``flock`` waiter is woken by the kernel the
moment the holder lets go.

The gate only orders our own committers; any other writer still gets SQLite's
lock and busy timeout as before, so correctness never depends on it.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FLOCK_POLL_S = 0.0001


def _flock_until(fd: int, deadline: float) -> bool:
    """``flock`` with a deadline; flock(2) has none, so poll (0.1 ms between tries)."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(FLOCK_POLL_S)
        else:
            return True


class WriteGate:
    """An exclusive ``flock`` on a file beside the database, per process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0
        self._lock = threading.Lock()  # flock is per open file: threads need their own order

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the gate for the duration of one write transaction."""
        if self._pid != os.getpid():
            self._open()
        with self._lock:
            assert self._fd is not None
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextmanager
    def held_within(self, timeout: float) -> Iterator[bool]:
        """Hold the gate if it comes free within ``timeout`` seconds; yields whether it did.

        For an event loop that commits its own batches: it waits a bounded
        moment for another committer's short transaction, never for a long
        one (a retention sweep, a vulnerability import), and hands its batch
        to a writer thread instead.
        """
        if self._pid != os.getpid():
            self._open()
        deadline = time.monotonic() + timeout
        if not self._lock.acquire(timeout=timeout):
            yield False
            return
        try:
            assert self._fd is not None
            held = _flock_until(self._fd, deadline)
            try:
                yield held
            finally:
                if held:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def _open(self) -> None:
        """A descriptor and a thread lock of this process's own.

        An inherited descriptor shares its lock with the parent, so it would not
        keep the two apart; an inherited thread lock may have been held at the fork.
        """
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._pid = os.getpid()

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None
