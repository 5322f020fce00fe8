"""Reloading the policy without a restart, through the API, audited either way."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import text

from tests.fixtures_app import POLICY_FIXTURES, make_registry_app


def _events(app, action: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    with app.services.db.reader() as session:
        rows = session.connection().execute(
            text("SELECT action, outcome FROM audit_events WHERE action LIKE :a ORDER BY seq"),
            {"a": action + "%"},
        )
        return [tuple(r) for r in rows]


def test_reload_puts_a_new_revision_in_force_and_refuses_a_broken_one(
    tmp_path: Path, database_url: str
) -> None:
    policy_dir = tmp_path / "policy"
    shutil.copytree(POLICY_FIXTURES / "allow_all", policy_dir)
    app = make_registry_app(tmp_path, database_url, policy_dir=policy_dir)
    with app.client:
        app.create_repo("files")
        first = app.client.get("/api/v1/policy", headers=app.headers()).json()["revision"]
        assert (
            app.client.put("/generic/files/p/1/a", content=b"a", headers=app.headers()).status_code
            == 201
        )

        for item in policy_dir.iterdir():
            (shutil.rmtree if item.is_dir() else Path.unlink)(item)  # type: ignore[operator]
        shutil.copytree(POLICY_FIXTURES / "deny_all", policy_dir, dirs_exist_ok=True)
        reloaded = app.client.post("/api/v1/policy/reload", headers=app.headers())
        assert reloaded.status_code == 200, reloaded.text
        second = reloaded.json()["revision"]
        assert second != first
        denied = app.client.get("/generic/files/p/1/a", headers=app.headers())
        assert denied.status_code == 403
        with app.services.db.reader() as session:
            revision = (
                session.connection()
                .execute(
                    text("SELECT decision FROM audit_events WHERE action='pull' ORDER BY seq DESC")
                )
                .scalar_one()
            )
        assert second in revision

        broken = next(policy_dir.rglob("*.rego"))
        broken.write_text(broken.read_text() + "\nthis is not rego {\n")
        refused = app.client.post("/api/v1/policy/reload", headers=app.headers())
        assert refused.status_code == 422
        assert broken.name in refused.json()["error"]["message"]
        assert app.client.get("/api/v1/policy", headers=app.headers()).json()["revision"] == second
    assert _events(app, "policy.reload") == [
        ("policy.reload", "committed"),
        ("policy.reload_refused", "committed"),
    ]
