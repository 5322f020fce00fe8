"""The SQLite write gate keeps committers of different processes apart."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import time
from pathlib import Path

from registry.db import Database
from registry.db.write_gate import WriteGate


def _try_lock(path: str, result: multiprocessing.queues.Queue[bool]) -> None:  # type: ignore[name-defined]
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        result.put(False)
    else:
        result.put(True)
    finally:
        os.close(fd)


def _other_process_can_lock(path: Path) -> bool:
    context = multiprocessing.get_context("spawn")
    result = context.Queue()
    child = context.Process(target=_try_lock, args=(str(path), result))
    child.start()
    child.join(30)
    return bool(result.get(timeout=5))


def test_held_gate_excludes_another_process(tmp_path: Path) -> None:
    gate = WriteGate(tmp_path / "db.write-gate")
    with gate.held():
        assert not _other_process_can_lock(gate.path)
    assert _other_process_can_lock(gate.path)
    gate.close()


def test_forked_child_opens_its_own_descriptor(tmp_path: Path) -> None:
    gate = WriteGate(tmp_path / "db.write-gate")
    with gate.held():
        pass  # the parent's descriptor exists now
    read, write = os.pipe()
    with gate.held():
        pid = os.fork()
        if pid == 0:  # the child: its own descriptor must wait for the parent's lock
            os.close(read)
            started = time.monotonic()
            with gate.held():
                waited = time.monotonic() - started
            os.write(write, b"1" if waited >= 0.2 else b"0")
            os._exit(0)
        time.sleep(0.3)
    os.waitpid(pid, 0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    gate.close()


def test_sqlite_files_get_a_gate_and_postgres_none(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'arbiter.db'}")
    assert database.write_gate is not None
    assert database.write_gate.path == tmp_path / "arbiter.db.write-gate"
    database.dispose()
    assert Database("sqlite://").write_gate is None


def test_held_within_gives_up_on_a_busy_gate_and_takes_a_free_one(tmp_path: Path) -> None:
    """Another process's flock: a bounded wait answers False; once free, True and held."""
    path = tmp_path / "db.write-gate"
    gate = WriteGate(path)
    other = os.open(
        path, os.O_RDWR | os.O_CREAT, 0o600
    )  # a descriptor of its own, as another process has
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        started = time.monotonic()
        with gate.held_within(0.02) as held:
            assert not held
        assert 0.015 < time.monotonic() - started < 1.0
        fcntl.flock(other, fcntl.LOCK_UN)
        with gate.held_within(0.02) as held:
            assert held
            assert not _other_process_can_lock(path)
        assert _other_process_can_lock(path)
    finally:
        os.close(other)
