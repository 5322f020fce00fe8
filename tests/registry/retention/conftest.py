"""An in-process registry whose clock the test moves: months of retention in seconds."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from registry.app import create_app
from registry.bootstrap import ensure_admin
from registry.config import Settings
from registry.db.models import Label
from registry.services import Services, build_services
from tests.fixtures_app import ADMIN_TOKEN, database_url

__all__ = ["FakeClock", "RetentionApp", "database_url", "retention_app"]


class FakeClock:
    """Real time at first; ``advance`` moves it forward (never back), for every reader."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, **delta: float) -> None:
        with self._lock:
            self._offset += timedelta(**delta)


@dataclass
class RetentionApp:
    client: TestClient
    services: Services
    settings: Settings
    clock: FakeClock

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def create_repo(self, name: str, fmt: str = "generic") -> None:
        response = self.client.post(
            "/api/v1/repositories", json={"name": name, "format": fmt}, headers=self.headers()
        )
        assert response.status_code == 201, response.text

    def push(self, repo: str, package: str, version: str, body: bytes, name: str = "f.bin") -> None:
        url = f"/generic/{repo}/{package}/{version}/{name}"
        response = self.client.put(url, content=body, headers=self.headers())
        assert response.status_code == 201, response.text

    def pull(self, repo: str, package: str, version: str, name: str = "f.bin") -> bytes:
        url = f"/generic/{repo}/{package}/{version}/{name}"
        response = self.client.get(url, headers=self.headers())
        assert response.status_code == 200, response.text
        return response.content

    def versions(self, repo: str, package: str) -> list[str]:
        response = self.client.get(f"/generic/{repo}/{package}", headers=self.headers())
        if response.status_code == 404:
            return []
        assert response.status_code == 200, response.text
        return [v["version"] for v in response.json()["versions"]]

    def set_rules(self, document: dict[str, Any]) -> dict[str, Any]:
        response = self.client.put("/api/v1/retention/rules", json=document, headers=self.headers())
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def run(self, **params: Any) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/retention/runs", params={"wait": True, **params}, headers=self.headers()
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def label(self, repo: str, package: str, version: str, key: str, value: str) -> None:
        """Labels have no API yet: written directly, as an administrator's tool would."""
        with self.services.db.writer() as session:
            version_id = (
                session.connection()
                .execute(
                    text(
                        "SELECT v.id FROM versions v JOIN packages p ON p.id = v.package_id "
                        "JOIN repositories r ON r.id = p.repository_id "
                        "WHERE r.name = :r AND p.name = :p AND v.version = :v"
                    ),
                    {"r": repo, "p": package, "v": version},
                )
                .scalar_one()
            )
            session.add(Label(version_id=version_id, key=key, value=value))

    def scalar(self, query: str, **params: Any) -> Any:
        with self.services.db.reader() as session:
            return session.connection().execute(text(query), params).scalar()


def make_retention_app(tmp_path: Path, url: str) -> RetentionApp:
    clock = FakeClock()
    settings = Settings(
        data=tmp_path / "data", database_url=url, policy_watch=False, checkpoint_interval_s=0
    )
    services = build_services(settings, clock)
    ensure_admin(services.governor, ADMIN_TOKEN)
    app = create_app(settings, services)
    return RetentionApp(TestClient(app), services, settings, clock)


@pytest.fixture
def retention_app(tmp_path: Path, database_url: str) -> Iterator[RetentionApp]:
    app = make_retention_app(tmp_path, database_url)
    with app.client:
        yield app
