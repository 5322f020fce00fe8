"""Fixtures for in-process apps over a real database (SQLite file or PostgreSQL).

``registry_app`` builds the whole application (migrations, blob store, policy
engine, audit log) in a temporary data directory and yields a TestClient with
an admin token. Tests that take ``database_url`` run once on SQLite and once
on a throwaway PostgreSQL cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from registry.app import create_app
from registry.bootstrap import ensure_admin
from registry.config import Settings
from registry.services import Services, build_services

ADMIN_TOKEN = "arb_test_admin_token_0123456789abcdef"
POLICY_FIXTURES = Path(__file__).parent / "policies" / "fixtures"


@dataclass
class RegistryApp:
    client: TestClient
    services: Services
    settings: Settings

    def headers(self, token: str = ADMIN_TOKEN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def create_repo(self, name: str, fmt: str = "generic", **extra: object) -> None:
        body = {"name": name, "format": fmt, **extra}
        response = self.client.post("/api/v1/repositories", json=body, headers=self.headers())
        assert response.status_code == 201, response.text


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'arbiter.db'}"
    make_database: Callable[[], str] = request.getfixturevalue("postgres_database")
    return make_database()


def make_registry_app(tmp_path: Path, database_url: str, **settings: object) -> RegistryApp:
    # As for live servers: a stalled CI machine must not turn a slow decision
    # into a denial the test did not ask for (tests/policies test the timeout).
    settings.setdefault("policy_timeout_ms", 5000)
    config = Settings(
        data=tmp_path / "data",
        database_url=database_url,
        policy_watch=False,
        **settings,  # type: ignore[arg-type]
    )
    services = build_services(config)
    ensure_admin(services.governor, ADMIN_TOKEN)
    app = create_app(config, services)
    return RegistryApp(client=TestClient(app), services=services, settings=config)


@pytest.fixture
def registry_app(tmp_path: Path, database_url: str) -> Iterator[RegistryApp]:
    app = make_registry_app(tmp_path, database_url)
    with app.client:
        yield app
