"""Resolved credentials are reused briefly, and forgotten on a change of identities."""

from __future__ import annotations

import pytest
from sqlmodel import delete

from registry.db.models import ApiToken
from registry.errors import Unauthorized
from tests.fixtures_app import ADMIN_TOKEN, RegistryApp


def test_cache_serves_until_forgotten_and_api_changes_forget(registry_app: RegistryApp) -> None:
    auth = registry_app.services.authenticator
    header = f"Bearer {ADMIN_TOKEN}"
    assert auth.authenticate(header).id == "admin"

    with registry_app.services.db.writer() as session:
        session.exec(delete(ApiToken))  # type: ignore[call-overload]
    assert auth.authenticate(header).id == "admin", "served from the cache"
    auth.forget()
    with pytest.raises(Unauthorized):
        auth.authenticate(header)


def test_revoking_through_the_api_takes_effect_at_once(registry_app: RegistryApp) -> None:
    app = registry_app
    admin = app.headers()
    app.client.post("/api/v1/users", json={"name": "ci"}, headers=admin)
    app.client.post("/api/v1/role-bindings", json={"role": "admin", "user": "ci"}, headers=admin)
    made = app.client.post("/api/v1/users/ci/tokens", json={"name": "t"}, headers=admin).json()
    assert app.client.get("/api/v1/whoami", headers=app.headers(made["token"])).status_code == 200
    assert app.client.delete(f"/api/v1/tokens/{made['id']}", headers=admin).status_code == 204
    assert app.client.get("/api/v1/whoami", headers=app.headers(made["token"])).status_code == 401
