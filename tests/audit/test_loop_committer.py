"""The loop committer: one loop iteration's appends share a COMMIT; nothing is lost or mixed up."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, bindparam, select
from sqlalchemy.exc import IntegrityError

from audit import AuditError, GroupCommitter, LoopCommitter, NoteSigner, verify_log
from tests.audit.helpers import draft


def _chain(engine: Engine, signer: NoteSigner) -> int:
    with engine.connect() as conn:
        return verify_log(conn, signer.public_key_text()).events


def test_appends_of_one_iteration_share_one_commit(engine: Engine, signer: NoteSigner) -> None:
    async def main() -> list[int]:
        committer = LoopCommitter(asyncio.get_running_loop(), engine)
        futures = [committer.append(draft(i)) for i in range(20)]  # one iteration
        assert not any(f.done() for f in futures)  # nothing is durable before the flush
        events = [await asyncio.wrap_future(f) for f in futures]
        assert committer.batches == 1
        more = [committer.append(draft(20 + i)) for i in range(5)]
        events += [await asyncio.wrap_future(f) for f in more]
        assert committer.batches == 2
        committer.close()
        return [e.seq for e in events]

    assert asyncio.run(main()) == list(range(1, 26))
    assert _chain(engine, signer) == 25


def test_a_failing_touch_fails_only_its_own_append(engine: Engine, signer: NoteSigner) -> None:
    counters = Table("loop_counters", MetaData(), Column("id", Integer, primary_key=True),
                     Column("n", Integer, nullable=False))  # fmt: skip
    counters.create(engine)
    with engine.begin() as conn:
        conn.execute(counters.insert(), [{"id": 1, "n": 0}])
    bump = counters.update().where(counters.c.id == bindparam("w")).values(n=counters.c.n + 1)
    duplicate = counters.insert().values(id=bindparam("w"), n=0)  # the row exists: fails

    async def main() -> list[object]:
        committer = LoopCommitter(asyncio.get_running_loop(), engine)
        futures = [
            committer.append(draft(i), touch=(duplicate if i == 3 else bump, {"w": 1}))
            for i in range(6)
        ]
        outcomes = await asyncio.gather(
            *(asyncio.wrap_future(f) for f in futures), return_exceptions=True
        )
        committer.close()
        return outcomes

    outcomes = asyncio.run(main())
    assert isinstance(outcomes[3], IntegrityError)
    assert [type(o).__name__ for i, o in enumerate(outcomes) if i != 3] == ["Event"] * 5
    with engine.connect() as conn:
        assert conn.execute(select(counters.c.n)).scalar_one() == 5
    assert _chain(engine, signer) == 5


def test_close_commits_what_is_queued_then_refuses(engine: Engine, signer: NoteSigner) -> None:
    async def main() -> None:
        committer = LoopCommitter(asyncio.get_running_loop(), engine)
        queued = [committer.append(draft(i)) for i in range(3)]
        committer.close()  # before the scheduled flush had its turn
        assert [f.result(timeout=0).seq for f in queued] == [1, 2, 3]
        with pytest.raises(AuditError, match="closed"):
            committer.append(draft(9))
        await asyncio.sleep(0)  # the flush scheduled earlier finds nothing left

    asyncio.run(main())
    assert _chain(engine, signer) == 3


class _Gate:
    """A one-process write gate: the shape of ``registry.db.write_gate.WriteGate``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def within(self, timeout: float) -> Iterator[bool]:
        held = self.lock.acquire(timeout=timeout)
        try:
            yield held
        finally:
            if held:
                self.lock.release()


def test_behind_a_long_transaction_the_batch_goes_to_the_writer_thread(
    engine: Engine, signer: NoteSigner
) -> None:
    """The loop waits for the gate only briefly; a writer thread waits the rest, off the loop."""
    gate = _Gate()
    with GroupCommitter(engine, gate=lambda: gate.lock) as thread_committer:

        async def main() -> tuple[list[int], int, float]:
            loop = asyncio.get_running_loop()
            committer = LoopCommitter(
                loop, engine, gate_within=gate.within, fallback=thread_committer.adopt
            )
            gate.lock.acquire()  # a long transaction elsewhere holds the gate
            loop.call_later(1.0, gate.lock.release)
            started = time.monotonic()
            futures = [committer.append(draft(i)) for i in range(4)]
            await asyncio.sleep(0.05)
            loop_free_after = time.monotonic() - started  # the loop ran on meanwhile
            events = [await asyncio.wrap_future(f) for f in futures]
            committer.close()
            return [e.seq for e in events], committer.handed_over, loop_free_after

        seqs, handed_over, loop_free_after = asyncio.run(main())
    assert seqs == [1, 2, 3, 4]
    assert handed_over == 1
    assert loop_free_after < 0.6  # a loop blocked on the gate would wait the whole 1.0 s
    assert _chain(engine, signer) == 4


def test_a_batch_the_closed_writer_thread_cannot_take_fails(engine: Engine) -> None:
    """Handed over at shutdown, after the writer thread closed: errors, never a hang."""
    gate = _Gate()
    thread_committer = GroupCommitter(engine, gate=lambda: gate.lock)
    thread_committer.close()

    async def main() -> BaseException | None:
        committer = LoopCommitter(
            asyncio.get_running_loop(),
            engine,
            gate_within=gate.within,
            gate_wait=0.001,
            fallback=thread_committer.adopt,
        )
        gate.lock.acquire()
        try:
            future = committer.append(draft(1))
            await asyncio.sleep(0.05)
        finally:
            gate.lock.release()
        assert future.done()
        return future.exception()

    error = asyncio.run(main())
    assert isinstance(error, AuditError) and "closed" in str(error)
