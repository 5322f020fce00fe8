"""Docker token auth: the challenge, the token endpoint, scopes narrowed to the policy."""

from __future__ import annotations

import base64
import json
import time

import pytest

from audit import EventFilter, query_events
from registry.formats.oci import auth, jws
from tests.fixtures_app import ADMIN_TOKEN, RegistryApp
from tests.registry.formats.oci.oci_helpers import error_code, make_image, push_image

NAME = "images/app"


@pytest.fixture
def oci(registry_app: RegistryApp) -> RegistryApp:
    registry_app.create_repo("images", "oci")
    registry_app.create_repo("public", "oci", labels={"public": "true"})
    return registry_app


def _basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _user(app: RegistryApp, name: str, role: str, repository: str) -> str:
    client, h = app.client, app.headers()
    client.post("/api/v1/users", json={"name": name}, headers=h)
    token = client.post(f"/api/v1/users/{name}/tokens", json={}, headers=h).json()["token"]
    binding = {"role": role, "user": name, "repository": repository}
    assert client.post("/api/v1/role-bindings", json=binding, headers=h).status_code == 201
    return str(token)


def _token(app: RegistryApp, scope: str, headers: dict[str, str] | None = None) -> str:
    response = app.client.get(
        "/v2/token", params={"service": "arbiter", "scope": scope}, headers=headers or {}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token"] == body["access_token"] and body["expires_in"] == 300
    return str(body["token"])


def test_base_challenges_anonymous_and_welcomes_credentials(oci: RegistryApp) -> None:
    anonymous = oci.client.get("/v2/")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == (
        'Bearer realm="http://testserver/v2/token",service="arbiter"'
    )
    assert anonymous.headers["docker-distribution-api-version"] == "registry/2.0"
    assert oci.client.get("/v2/", headers=_basic("admin", ADMIN_TOKEN)).json() == {}
    assert oci.client.get("/v2/", headers=oci.headers()).status_code == 200
    bad = oci.client.get("/v2/", headers=_basic("admin", "arb_wrong"))
    assert bad.status_code == 401 and error_code(bad) == "UNAUTHORIZED"


def test_scopes_are_what_the_roles_grant(oci: RegistryApp) -> None:
    reader = _user(oci, "rita", "reader", "images")
    writer = _user(oci, "walt", "writer", "images")
    scope = f"repository:{NAME}:pull,push,delete"

    def granted(headers: dict[str, str]) -> list[str]:
        access = _claims(_token(oci, scope, headers))["access"]
        return list(access[0]["actions"])

    assert granted(_basic("rita", reader)) == ["pull"]
    assert granted(_basic("walt", writer)) == ["pull", "push"]
    assert granted(_basic("admin", ADMIN_TOKEN)) == ["pull", "push", "delete"]
    assert granted({}) == []  # anonymous, private repository
    public = _claims(_token(oci, "repository:public/app:pull,push"))["access"][0]
    assert public["actions"] == ["pull"]  # anonymous pull of a public repository
    unknown = _claims(_token(oci, "repository:nowhere/app:pull", _basic("admin", ADMIN_TOKEN)))
    assert unknown["access"][0]["actions"] == []


def test_token_issues_are_audited(oci: RegistryApp) -> None:
    _token(oci, f"repository:{NAME}:pull", _basic("admin", ADMIN_TOKEN))

    with oci.services.db.reader() as session:
        issued = list(query_events(session.connection(), EventFilter(action="token.issue")))
    assert issued[-1].actor["id"] == "admin"
    assert issued[-1].details["access"][0]["actions"] == ["pull"]


def test_a_token_is_used_only_within_its_scope(oci: RegistryApp) -> None:
    push_image(oci.client, "", NAME, make_image(layers=1), "v1", oci.headers())
    pull_only = {
        "Authorization": "Bearer "
        + _token(oci, f"repository:{NAME}:pull", _basic("admin", ADMIN_TOKEN))
    }
    assert oci.client.get(f"/v2/{NAME}/manifests/v1", headers=pull_only).status_code == 200
    other = oci.client.get("/v2/images/other/tags/list", headers=pull_only)
    assert other.status_code == 401
    assert 'scope="repository:images/other:pull"' in other.headers["www-authenticate"]
    upload = oci.client.post(f"/v2/{NAME}/blobs/uploads/", headers=pull_only)
    assert upload.status_code == 401
    assert f'scope="repository:{NAME}:pull,push"' in upload.headers["www-authenticate"]


def test_a_token_without_a_scope_the_policy_refuses_gets_the_refusal(oci: RegistryApp) -> None:
    reader = _user(oci, "rita", "reader", "images")
    token = _token(oci, f"repository:{NAME}:pull,push", _basic("rita", reader))
    response = oci.client.post(
        f"/v2/{NAME}/blobs/uploads/", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    assert "holds no role that grants push" in response.json()["errors"][0]["message"]


def test_tampered_foreign_and_expired_tokens_are_refused(oci: RegistryApp) -> None:
    token = _token(oci, f"repository:{NAME}:pull", _basic("admin", ADMIN_TOKEN))
    header, payload, signature = token.split(".")
    claims = _claims(token)
    claims["access"][0]["actions"] = ["pull", "push", "delete"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for bad in (f"{header}.{forged}.{signature}", f"{header}.{payload}.AAAA", "a.b.c"):
        response = oci.client.get(
            f"/v2/{NAME}/tags/list", headers={"Authorization": f"Bearer {bad}"}
        )
        assert response.status_code == 401, bad
    key = auth.signing_key(oci.services)
    expired = jws.sign({**claims, "exp": int(time.time()) - 1}, key)
    response = oci.client.get(
        f"/v2/{NAME}/tags/list", headers={"Authorization": f"Bearer {expired}"}
    )
    assert response.status_code == 401
    assert "expired" in response.json()["errors"][0]["message"]
    other_service = jws.sign({**claims, "aud": "someone-else"}, key)
    response = oci.client.get(
        f"/v2/{NAME}/tags/list", headers={"Authorization": f"Bearer {other_service}"}
    )
    assert response.status_code == 401


def test_oauth2_password_grant_and_bad_credentials(oci: RegistryApp) -> None:
    response = oci.client.post(
        "/v2/token",
        data={
            "grant_type": "password",
            "username": "admin",
            "password": ADMIN_TOKEN,
            "service": "arbiter",
            "scope": f"repository:{NAME}:pull",
            "client_id": "helm",
        },
    )
    assert response.status_code == 200
    assert _claims(response.json()["token"])["access"][0]["actions"] == ["pull"]
    refused = oci.client.get("/v2/token", headers=_basic("admin", "arb_not_a_token"))
    assert refused.status_code == 401 and error_code(refused) == "UNAUTHORIZED"


def test_plain_api_tokens_work_directly_as_basic_or_bearer(oci: RegistryApp) -> None:
    push_image(oci.client, "", NAME, make_image(layers=1), "v1", oci.headers())
    for headers in (_basic("admin", ADMIN_TOKEN), _basic("__token__", ADMIN_TOKEN), oci.headers()):
        assert oci.client.get(f"/v2/{NAME}/manifests/v1", headers=headers).status_code == 200


def test_signing_key_is_created_once_and_private(oci: RegistryApp, tmp_path) -> None:
    path = tmp_path / "keys" / "k.key"
    first = jws.load_key(path)
    assert len(first) == jws.KEY_BYTES
    assert jws.load_key(path) == first
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_token_verified_once_still_expires(oci: RegistryApp) -> None:
    """Verified tokens are remembered, but never past their own ``exp``."""
    token = _token(oci, f"repository:{NAME}:pull", _basic("admin", ADMIN_TOKEN))
    claims = _claims(token)
    short = jws.sign({**claims, "exp": int(time.time()) + 2}, auth.signing_key(oci.services))
    url, headers = f"/v2/{NAME}/tags/list", {"Authorization": f"Bearer {short}"}
    assert oci.client.get(url, headers=headers).status_code in (200, 404)  # accepted
    time.sleep(2.1)
    response = oci.client.get(url, headers=headers)
    assert response.status_code == 401
    assert "expired" in response.json()["errors"][0]["message"]
