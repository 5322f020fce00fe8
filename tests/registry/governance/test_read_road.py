"""Where governed reads run, and that each engine's road serves, counts and audits them."""

from __future__ import annotations

import asyncio
import shutil
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text

from audit import LoopCommitter
from registry.governance.governor import PendingRead
from registry.web.hops import governed, reads_on_loop
from tests.fixtures_app import make_registry_app

URL = "/generic/files/tool/1.0/tool.bin"


@pytest.mark.parametrize("engine", ["embedded", "wasm"])
def test_reads_are_served_counted_and_audited(
    tmp_path: Path, database_url: str, engine: str
) -> None:
    if engine == "wasm" and shutil.which("opa") is None:
        pytest.skip("the wasm engine compiles with the opa binary, not on PATH")
    app = make_registry_app(tmp_path, database_url, policy_engine=engine)
    with app.client:
        assert reads_on_loop(app.services) == database_url.startswith("sqlite")
        app.create_repo("files")
        assert app.client.put(URL, content=b"tool", headers=app.headers()).status_code == 201
        for _ in range(3):
            assert app.client.get(URL, headers=app.headers()).content == b"tool"
        refused = app.client.get(URL)  # anonymous, and the repository is not public
        assert refused.status_code in (401, 403)
        with app.services.db.reader() as session:
            conn = session.connection()
            downloads = conn.execute(text("SELECT downloads FROM versions")).scalar_one()
            rows = conn.execute(
                text("SELECT outcome, decision FROM audit_events WHERE action = 'pull'")
            ).all()
    assert downloads == 3
    assert [outcome for outcome, _decision in rows] == ["allowed"] * 3 + ["denied"]
    assert all(f'"engine":"{engine}"' in decision for _outcome, decision in rows)


def test_the_opa_engine_takes_the_hop(tmp_path: Path) -> None:
    app = make_registry_app(tmp_path, f"sqlite:///{tmp_path / 'a.db'}")
    with app.client:
        assert reads_on_loop(app.services)
        app.services.settings.policy_engine = "opa"
        assert not reads_on_loop(app.services)


def test_a_cancelled_request_still_records_its_read() -> None:
    """A client that disconnects cancels the request's task, never the queued event."""
    recorded: Future[Any] = Future()
    pending = PendingRead(rows="rows", recorded=recorded)
    services = SimpleNamespace(
        db=SimpleNamespace(dialect="sqlite"),
        settings=SimpleNamespace(policy_engine="wasm"),
    )

    async def scenario() -> None:
        task = asyncio.ensure_future(governed(services, lambda: pending))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert not recorded.cancelled()
    assert recorded.set_running_or_notify_cancel()  # the committer would still take it


def test_a_read_on_the_loop_commits_on_the_loop(tmp_path: Path) -> None:
    """Reads started on an event loop append through that loop's committer; others don't."""
    app = make_registry_app(tmp_path, f"sqlite:///{tmp_path / 'a.db'}")
    governor = app.services.governor
    with app.client:
        app.create_repo("files")
        assert app.client.put(URL, content=b"tool", headers=app.headers()).status_code == 201
        assert app.client.get(URL, headers=app.headers()).content == b"tool"
        loop_batches = sum(c.batches for c in governor._loop_committers.values())

        async def on_a_loop() -> object:
            return governor._read_appends()

        seen = asyncio.run(on_a_loop())
    assert loop_batches >= 1  # the pull's event committed on the server's loop
    assert isinstance(seen, LoopCommitter)
    assert governor._read_appends() is governor._group_committer()  # no loop: the writer thread
