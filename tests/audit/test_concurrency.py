"""Concurrent writers (threads and processes) never fork the chain, skip a seq or lose an event."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    Table,
    bindparam,
    create_engine,
    select,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from audit import AuditLog, Event, GroupCommitter, NoteSigner, create_checkpoint, verify_log
from audit._rows import EVENT_COLUMNS, event_from_row
from audit.schema import audit_events
from tests.audit.helpers import draft, install, worker_append


def _all_events(engine: Engine) -> list[Event]:
    with engine.connect() as conn:
        rows = conn.execute(select(*EVENT_COLUMNS).order_by(audit_events.c.seq))
        return [event_from_row(r) for r in rows]


def _assert_one_chain(engine: Engine, signer: NoteSigner, expected: int) -> list[Event]:
    events = _all_events(engine)
    assert [e.seq for e in events] == list(range(1, expected + 1))
    with engine.begin() as conn:
        create_checkpoint(conn, signer)
    with engine.connect() as conn:
        report = verify_log(conn, signer.public_key_text())
    assert report.events == expected
    return events


def _run_threads(count: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_threads_each_with_their_own_transactions(engine: Engine, signer: NoteSigner) -> None:
    log, per_thread = AuditLog(), 40

    def work(worker: int) -> None:
        for i in range(per_thread):
            with engine.begin() as conn:
                log.append(conn, draft(worker * 1000 + i))

    _run_threads(8, work)
    events = _assert_one_chain(engine, signer, 8 * per_thread)
    assert sorted(e.details["n"] for e in events) == sorted(
        w * 1000 + i for w in range(8) for i in range(per_thread)
    )


@pytest.mark.parametrize("per_tx", [1, 7])
def test_processes(db_url: str, signer: NoteSigner, per_tx: int) -> None:
    engine = create_engine(db_url)
    install(engine)
    workers, each = 4, 60
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(worker_append, db_url, w, each, per_tx) for w in range(workers)]
        assert [f.result(timeout=300) for f in futures] == [each] * workers
    from tests.audit.helpers import make_engine

    checked = make_engine(db_url)
    try:
        events = _assert_one_chain(checked, signer, workers * each)
        per_actor: dict[str, int] = {}
        for event in events:
            per_actor[event.actor["id"]] = per_actor.get(event.actor["id"], 0) + 1
        assert per_actor == {f"proc-{w}": each for w in range(workers)}
    finally:
        checked.dispose()
        engine.dispose()


def test_group_commit_batches_and_isolates_failures(engine: Engine, signer: NoteSigner) -> None:
    log = AuditLog()

    def unit(i: int) -> Callable[[Connection], Event]:
        def apply(conn: Connection) -> Event:
            event = log.append(conn, draft(i))
            if i % 50 == 13:
                raise ValueError(f"unit {i} fails after appending")
            return event

        return apply

    results: dict[int, Any] = {}
    with GroupCommitter(engine, max_batch=64) as committer:

        def work(worker: int) -> None:
            for k in range(50):
                i = worker * 50 + k
                try:
                    results[i] = committer.run(unit(i), timeout=120)
                except ValueError as exc:
                    results[i] = exc

        _run_threads(8, work)
    failed = {i for i, r in results.items() if isinstance(r, ValueError)}
    assert failed == {i for i in range(400) if i % 50 == 13}
    events = _assert_one_chain(engine, signer, 400 - len(failed))
    assert {e.details["n"] for e in events} == set(range(400)) - failed
    acknowledged = {r.seq: r for r in results.values() if isinstance(r, Event)}
    assert acknowledged == {e.seq: e for e in events}
    assert committer.batches < committer.units == 400


def test_group_commit_failure_of_the_commit_reaches_every_unit(sqlite_engine: Engine) -> None:
    log = AuditLog()
    with GroupCommitter(sqlite_engine) as committer:
        with pytest.raises(Exception, match="no such table"):
            committer.run(lambda conn: conn.exec_driver_sql("INSERT INTO nowhere VALUES (1)"))
        event = committer.run(lambda conn: log.append(conn, draft(1)))
    assert event.seq == 1
    with pytest.raises(Exception, match="closed"):
        committer.submit(lambda conn: None)


def test_sqlite_deferred_writer_fails_instead_of_forking(sqlite_engine: Engine) -> None:
    """A DEFERRED transaction that read the head before another commit cannot write."""
    log = AuditLog()
    with sqlite_engine.connect() as a, sqlite_engine.connect() as b:
        a.execution_options(sqlite_begin="DEFERRED")
        with a.begin():
            stale = log.head(a)  # A's read snapshot starts here
            with b.begin():
                log.append(b, draft(1))
            with pytest.raises(OperationalError, match="locked"):
                log.append(a, draft(2))
    assert stale.seq == 0
    assert [e.seq for e in _all_events(sqlite_engine)] == [1]


def test_group_committed_appends_and_units_mix(engine: Engine, signer: NoteSigner) -> None:
    log = AuditLog()
    acked: list[Event] = []
    lock = threading.Lock()
    with GroupCommitter(engine, log=log) as committer:

        def work(worker: int) -> None:
            for k in range(40):
                i = worker * 100 + k
                if k % 3:
                    event = committer.append(draft(i)).result(timeout=120)
                else:
                    event = committer.run(lambda conn, i=i: log.append(conn, draft(i)), 120)
                with lock:
                    acked.append(event)

        _run_threads(8, work)
    events = _assert_one_chain(engine, signer, 320)
    assert sorted(acked, key=lambda e: e.seq) == events
    for worker in range(8):  # each caller's events keep their order in the chain
        mine = [e.details["n"] for e in events if e.details["n"] // 100 == worker]
        assert mine == sorted(mine)


def test_touches_commit_with_their_events_and_only_a_bad_one_fails(
    engine: Engine, signer: NoteSigner
) -> None:
    """A touch runs in its event's transaction; a failing one costs only its own caller."""
    counters = Table("touch_counters", MetaData(), Column("id", Integer, primary_key=True),
                     Column("n", Integer, nullable=False))  # fmt: skip
    counters.create(engine)
    with engine.begin() as conn:
        conn.execute(counters.insert(), [{"id": w, "n": 0} for w in range(8)])
    bump = counters.update().where(counters.c.id == bindparam("w")).values(n=counters.c.n + 1)
    duplicate = counters.insert().values(id=bindparam("w"), n=0)  # the row exists: fails
    acked: dict[int, Event] = {}
    refused: set[int] = set()
    lock = threading.Lock()
    with GroupCommitter(engine, log=AuditLog()) as committer:

        def work(worker: int) -> None:
            for k in range(40):
                i = worker * 100 + k
                bad = k % 13 == 7
                touch = (duplicate if bad else bump, {"w": worker})
                try:
                    event = committer.append(draft(i), touch=touch).result(timeout=120)
                except IntegrityError:
                    with lock:
                        refused.add(i)
                    continue
                with lock:
                    acked[i] = event

        _run_threads(8, work)
    assert refused == {w * 100 + k for w in range(8) for k in range(40) if k % 13 == 7}
    events = _assert_one_chain(engine, signer, 320 - len(refused))
    assert {e.details["n"] for e in events} == set(acked)
    with engine.connect() as conn:
        counts = dict(conn.execute(select(counters.c.id, counters.c.n)).all())
    assert counts == {w: 40 - 3 for w in range(8)}  # k = 7, 20, 33 refused per worker
    assert committer.batches < committer.units
