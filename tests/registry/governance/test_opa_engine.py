"""The registry on a real OPA server: same road, same answers, fails closed when OPA dies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.fixtures_app import make_registry_app
from tests.policies.conftest import start_opa


@pytest.fixture
def opa() -> str:
    binary = shutil.which("opa")
    if binary is None:
        pytest.skip("the opa binary is not on PATH; run scripts/install-tools.sh")
    return binary


def test_generic_round_trip_on_opa_then_deny_when_opa_is_gone(
    tmp_path: Path, database_url: str, opa: str
) -> None:
    server = start_opa(opa)
    try:
        app = make_registry_app(tmp_path, database_url, policy_engine="opa", opa_url=server.url)
        with app.client:
            app.create_repo("files")
            url = "/generic/files/tool/1.0/tool.bin"
            assert app.client.put(url, content=b"tool", headers=app.headers()).status_code == 201
            assert app.client.get(url, headers=app.headers()).content == b"tool"

            server.stop()
            denied = app.client.get(url, headers=app.headers())
            assert denied.status_code == 403
            assert "policy engine unavailable" in denied.json()["error"]["reasons"]
            with app.services.db.reader() as session:
                row = (
                    session.connection()
                    .execute(
                        text("SELECT outcome, decision FROM audit_events ORDER BY seq DESC LIMIT 1")
                    )
                    .one()
                )
            assert row[0] == "denied"
            assert '"engine":"opa"' in row[1]
    finally:
        server.stop()
