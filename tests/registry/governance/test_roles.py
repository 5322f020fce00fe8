"""Roles decide what a subject may do, through the starter policies in rego/."""

from __future__ import annotations

import pytest

from tests.fixtures_app import RegistryApp


def _user_with_role(app: RegistryApp, name: str, role: str | None, repository: str | None) -> str:
    admin = app.headers()
    assert app.client.post("/api/v1/users", json={"name": name}, headers=admin).status_code == 201
    if role is not None:
        binding = {"role": role, "repository": repository, "user": name}
        response = app.client.post("/api/v1/role-bindings", json=binding, headers=admin)
        assert response.status_code == 201, response.text
    token = app.client.post(f"/api/v1/users/{name}/tokens", json={"name": "t"}, headers=admin)
    assert token.status_code == 201, token.text
    return str(token.json()["token"])


@pytest.fixture
def repo_with_file(registry_app: RegistryApp) -> RegistryApp:
    registry_app.create_repo("libs")
    registry_app.create_repo("other")
    put = registry_app.client.put(
        "/generic/libs/lib/1.0/lib.tgz", content=b"lib", headers=registry_app.headers()
    )
    assert put.status_code == 201
    return registry_app


def test_reader_pulls_but_may_not_push_or_delete(repo_with_file: RegistryApp) -> None:
    app = repo_with_file
    token = _user_with_role(app, "rita", "reader", "libs")
    headers = app.headers(token)
    assert app.client.get("/generic/libs/lib/1.0/lib.tgz", headers=headers).content == b"lib"
    push = app.client.put("/generic/libs/lib/2.0/lib.tgz", content=b"x", headers=headers)
    assert push.status_code == 403
    assert "no role that grants push" in push.json()["error"]["message"]
    delete = app.client.delete("/generic/libs/lib/1.0/lib.tgz", headers=headers)
    assert delete.status_code == 403


def test_scoped_role_does_not_reach_other_repositories(repo_with_file: RegistryApp) -> None:
    app = repo_with_file
    token = _user_with_role(app, "wes", "writer", "libs")
    headers = app.headers(token)
    ok = app.client.put("/generic/libs/lib/2.0/lib.tgz", content=b"two", headers=headers)
    assert ok.status_code == 201, ok.text
    elsewhere = app.client.put("/generic/other/lib/2.0/lib.tgz", content=b"two", headers=headers)
    assert elsewhere.status_code == 403
    assert app.client.delete("/generic/libs/lib/2.0/lib.tgz", headers=headers).status_code == 403


def test_maintainer_deletes(repo_with_file: RegistryApp) -> None:
    app = repo_with_file
    token = _user_with_role(app, "mia", "maintainer", "libs")
    response = app.client.delete("/generic/libs/lib/1.0", headers=app.headers(token))
    assert response.status_code == 204
    assert app.client.get("/generic/libs/lib", headers=app.headers()).status_code == 404


def test_user_without_roles_is_forbidden_not_unauthorized(repo_with_file: RegistryApp) -> None:
    app = repo_with_file
    token = _user_with_role(app, "nora", None, None)
    response = app.client.get("/generic/libs/lib/1.0/lib.tgz", headers=app.headers(token))
    assert response.status_code == 403


def test_anonymous_pulls_only_from_public_repositories(repo_with_file: RegistryApp) -> None:
    app = repo_with_file
    assert app.client.get("/generic/libs/lib/1.0/lib.tgz").status_code == 401
    patch = app.client.patch(
        "/api/v1/repositories/libs", json={"labels": {"public": "true"}}, headers=app.headers()
    )
    assert patch.status_code == 200, patch.text
    assert app.client.get("/generic/libs/lib/1.0/lib.tgz").content == b"lib"
    assert app.client.put("/generic/libs/lib/3.0/lib.tgz", content=b"x").status_code == 401


def test_quarantine_label_blocks_pull_with_the_policy_reason(repo_with_file: RegistryApp) -> None:
    from sqlmodel import select

    from registry.db.models import Label, Version

    app = repo_with_file
    with app.services.db.writer() as session:
        version = session.exec(select(Version).where(Version.version == "1.0")).one()
        session.add(Label(version_id=version.id or 0, key="quarantine", value="malware-scan"))
    response = app.client.get("/generic/libs/lib/1.0/lib.tgz", headers=app.headers())
    assert response.status_code == 403
    assert "quarantined" in response.json()["error"]["message"]
