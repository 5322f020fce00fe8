"""First start and configuration changes are events in the audit log."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from registry.bootstrap import ensure_admin, record_configuration
from registry.config import Settings
from registry.services import build_services


def _count(services, action: str) -> int:  # type: ignore[no-untyped-def]
    with services.db.reader() as session:
        query = text("SELECT count(*) FROM audit_events WHERE action = :a")
        return int(session.connection().execute(query, {"a": action}).scalar_one())


def test_admin_once_and_configuration_changes_recorded(tmp_path: Path) -> None:
    settings = Settings(data=tmp_path, policy_watch=False)
    services = build_services(settings)
    try:
        token = ensure_admin(services.governor, None)
        assert token is not None and token.startswith("arb_")
        assert ensure_admin(services.governor, None) is None
        assert _count(services, "user.create") == 1

        record_configuration(services.governor, settings)
        record_configuration(services.governor, settings)
        assert _count(services, "config.load") == 1
        changed = Settings(data=tmp_path, policy_watch=False, max_upload_size=1024)
        record_configuration(services.governor, changed)
        assert _count(services, "config.load") == 2
        with services.db.reader() as session:
            rows = session.connection().execute(text("SELECT details FROM audit_events")).all()
        assert all(token not in row[0] for row in rows), "the token must never be audited"
    finally:
        services.close()
