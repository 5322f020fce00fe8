"""The loop committer: one loop iteration's appends share a COMMIT; nothing is lost or mixed up."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, bindparam, select
from sqlalchemy.exc import IntegrityError

from audit import AuditError, LoopCommitter, NoteSigner, verify_log
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
