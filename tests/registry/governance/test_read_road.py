"""Where governed reads run, and that each engine's road serves, counts and audits them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from registry.web.hops import reads_on_loop
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
