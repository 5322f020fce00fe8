"""Quarantine through the labels API: pull refused, then released, and both in lineage."""

from __future__ import annotations

from tests.fixtures_app import RegistryApp

LABELS = "/api/v1/artifacts/files/tool/1.0/labels"


def test_quarantine_and_release(registry_app: RegistryApp) -> None:
    app = registry_app
    app.create_repo("files")
    url = "/generic/files/tool/1.0/tool.bin"
    assert app.client.put(url, content=b"t", headers=app.headers()).status_code == 201

    set_ = app.client.patch(
        LABELS, json={"labels": {"quarantine": "malware scan"}}, headers=app.headers()
    )
    assert set_.status_code == 200, set_.text
    assert set_.json() == {"quarantine": "malware scan"}
    refused = app.client.get(url, headers=app.headers())
    assert refused.status_code == 403
    assert "quarantined" in refused.json()["error"]["message"]

    released = app.client.patch(
        LABELS, json={"labels": {"quarantine": None}}, headers=app.headers()
    )
    assert released.json() == {}
    assert app.client.get(url, headers=app.headers()).content == b"t"

    lineage = app.client.get("/api/v1/lineage/files/tool/1.0", headers=app.headers()).json()
    kinds = [step["kind"] for step in lineage["steps"]]
    assert "quarantined" in kinds and "released" in kinds, kinds


def test_labels_need_a_maintainer(registry_app: RegistryApp) -> None:
    app = registry_app
    app.create_repo("files")
    app.client.put("/generic/files/tool/1.0/tool.bin", content=b"t", headers=app.headers())
    admin = app.headers()
    app.client.post("/api/v1/users", json={"name": "wes"}, headers=admin)
    app.client.post(
        "/api/v1/role-bindings",
        json={"role": "writer", "repository": "files", "user": "wes"},
        headers=admin,
    )
    token = app.client.post("/api/v1/users/wes/tokens", json={}, headers=admin).json()["token"]
    response = app.client.patch(
        LABELS, json={"labels": {"legal-hold": "case 7"}}, headers=app.headers(token)
    )
    assert response.status_code == 403
    assert app.client.get(LABELS, headers=admin).json() == {}
    missing = app.client.patch(
        "/api/v1/artifacts/files/tool/9.9/labels", json={"labels": {"a": "b"}}, headers=admin
    )
    assert missing.status_code == 404
