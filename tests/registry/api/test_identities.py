"""The identities API: users, teams, tokens, role bindings and whoami, on SQLite and PostgreSQL.

Each change must be audited in the same transaction and no token secret or
hash may ever reach the audit log.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.fixtures_app import ADMIN_TOKEN, RegistryApp

pytestmark = pytest.mark.usefixtures("registry_app")


# --- helpers -----------------------------------------------------------------


def call(
    app: RegistryApp, method: str, path: str, token: str | None = ADMIN_TOKEN, **kwargs: Any
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return app.client.request(method, "/api/v1" + path, headers=headers, **kwargs)


def expect(response: Any, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def error_of(response: Any, status: int) -> dict[str, str]:
    body = expect(response, status)
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return body["error"]  # type: ignore[no-any-return]


def make_user(app: RegistryApp, name: str, kind: str = "user") -> str:
    """Create ``name`` and return a fresh token of theirs."""
    expect(call(app, "POST", "/users", json={"name": name, "kind": kind}), 201)
    return str(expect(call(app, "POST", f"/users/{name}/tokens", json={}), 201)["token"])


def events(app: RegistryApp, action: str) -> list[dict[str, Any]]:
    query = text(
        "SELECT actor, resource, outcome, details FROM audit_events WHERE action = :a ORDER BY seq"
    )
    with app.services.db.reader() as session:
        rows = session.connection().execute(query, {"a": action}).all()
    return [
        {
            "actor": json.loads(r.actor),
            "resource": json.loads(r.resource),
            "outcome": r.outcome,
            "details": json.loads(r.details),
        }
        for r in rows
    ]


def whoami(app: RegistryApp, token: str | None) -> dict[str, Any]:
    return expect(call(app, "GET", "/whoami", token=token), 200)  # type: ignore[no-any-return]


# --- users -------------------------------------------------------------------


def test_users_are_created_listed_shown_and_audited(registry_app: RegistryApp) -> None:
    app = registry_app
    created = expect(call(app, "POST", "/users", json={"name": "ci-bot", "kind": "robot"}), 201)
    assert created["name"] == "ci-bot"
    assert created["kind"] == "robot"
    assert created["disabled"] is False

    names = [u["name"] for u in expect(call(app, "GET", "/users"), 200)]
    assert names == ["admin", "ci-bot"]
    shown = expect(call(app, "GET", "/users/admin"), 200)
    assert shown["roles"] == ["admin"]
    assert shown["teams"] == []

    [event] = events(app, "user.create")[-1:]
    assert event["resource"] == {"user": "ci-bot"}
    assert event["actor"]["id"] == "admin"
    assert event["outcome"] == "committed"


def test_duplicate_user_is_a_conflict(registry_app: RegistryApp) -> None:
    expect(call(registry_app, "POST", "/users", json={"name": "dana"}), 201)
    error = error_of(call(registry_app, "POST", "/users", json={"name": "dana"}), 409)
    assert error["code"] == "CONFLICT"
    assert "already exists" in error["message"]
    assert len(events(registry_app, "user.create")) == 2, "bootstrap admin + dana, no more"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "bad name"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "anonymous"}, "name"),
        ({"name": "__token__"}, "name"),
        ({"name": "ok", "kind": "wizard"}, "kind"),
        ({"name": "ok", "admin": True}, "admin"),
        ({}, "name"),
    ],
)
def test_bad_user_input_is_422_naming_the_field(
    registry_app: RegistryApp, body: dict[str, Any], field: str
) -> None:
    error = error_of(call(registry_app, "POST", "/users", json=body), 422)
    assert error["code"] == "INVALID"
    assert field in error["message"]


def test_only_admins_manage_users(registry_app: RegistryApp) -> None:
    token = make_user(registry_app, "eve")
    assert error_of(call(registry_app, "POST", "/users", token, json={"name": "x"}), 403)
    assert error_of(call(registry_app, "GET", "/users", token), 403)
    assert error_of(call(registry_app, "GET", "/users/admin", token), 403)
    assert expect(call(registry_app, "GET", "/users/eve", token), 200)["name"] == "eve"

    anonymous = call(registry_app, "POST", "/users", None, json={"name": "x"})
    assert error_of(anonymous, 401)["code"] == "UNAUTHORIZED"
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")


def test_disabling_a_user_stops_their_tokens(registry_app: RegistryApp) -> None:
    token = make_user(registry_app, "leaver")
    assert whoami(registry_app, token)["id"] == "leaver"
    expect(call(registry_app, "DELETE", "/users/leaver"), 204)
    assert expect(call(registry_app, "GET", "/users/leaver"), 200)["disabled"] is True
    assert error_of(call(registry_app, "GET", "/whoami", token), 401)
    refused = call(registry_app, "POST", "/users/leaver/tokens", json={})
    assert "disabled" in error_of(refused, 409)["message"]
    assert events(registry_app, "user.disable")[-1]["resource"] == {"user": "leaver"}


def test_an_admin_cannot_disable_themselves(registry_app: RegistryApp) -> None:
    error = error_of(call(registry_app, "DELETE", "/users/admin"), 409)
    assert "yourself" in error["message"]
    assert whoami(registry_app, ADMIN_TOKEN)["id"] == "admin"


def test_unknown_user_is_404(registry_app: RegistryApp) -> None:
    assert error_of(call(registry_app, "GET", "/users/ghost"), 404)["code"] == "NOT_FOUND"
    assert error_of(call(registry_app, "DELETE", "/users/ghost"), 404)
    assert error_of(call(registry_app, "POST", "/users/ghost/tokens", json={}), 404)


# --- tokens ------------------------------------------------------------------


def test_token_secret_is_shown_once_and_stored_only_as_a_hash(registry_app: RegistryApp) -> None:
    app = registry_app
    expect(call(app, "POST", "/users", json={"name": "builder", "kind": "robot"}), 201)
    body = {"name": "ci", "scopes": ["push"], "expires_in_days": 30}
    created = expect(call(app, "POST", "/users/builder/tokens", json=body), 201)
    secret = created["token"]
    assert secret.startswith("arb_")
    assert created["user"] == "builder"
    assert created["scopes"] == ["push"]
    expires = datetime.fromisoformat(created["expires_at"])
    expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=5)

    listed = expect(call(app, "GET", "/users/builder/tokens"), 200)
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0]
    assert secret not in json.dumps(listed)

    digest = hashlib.sha256(secret.encode()).hexdigest()
    with app.services.db.reader() as session:
        conn = session.connection()
        stored = conn.execute(
            text("SELECT token_hash FROM api_tokens WHERE id = :i"), {"i": created["id"]}
        )
        assert stored.scalar_one() == digest
        audit_text = " ".join(
            " ".join(str(c) for c in row)
            for row in conn.execute(text("SELECT * FROM audit_events"))
        )
    assert secret not in audit_text
    assert digest not in audit_text

    [event] = events(app, "token.create")[-1:]
    assert event["resource"] == {"user": "builder", "token": created["id"]}
    assert event["details"]["scopes"] == ["push"]
    assert whoami(app, secret)["id"] == "builder"


def test_users_manage_their_own_tokens_only(registry_app: RegistryApp) -> None:
    app = registry_app
    alice = make_user(app, "alice")
    bob = make_user(app, "bob")
    own = expect(call(app, "POST", "/users/alice/tokens", alice, json={"name": "laptop"}), 201)
    assert whoami(app, own["token"])["id"] == "alice"

    assert error_of(call(app, "POST", "/users/bob/tokens", alice, json={}), 403)
    assert error_of(call(app, "GET", "/users/bob/tokens", alice), 403)
    bobs = expect(call(app, "GET", "/users/bob/tokens"), 200)
    stranger = call(app, "DELETE", f"/tokens/{bobs[0]['id']}", alice)
    assert error_of(stranger, 404)["code"] == "NOT_FOUND"
    assert whoami(app, bob)["id"] == "bob"

    expect(call(app, "DELETE", f"/tokens/{own['id']}", alice), 204)
    assert error_of(call(app, "GET", "/whoami", own["token"]), 401)
    assert whoami(app, alice)["id"] == "alice"
    revoked = events(app, "token.revoke")[-1]
    assert revoked["resource"] == {"user": "alice", "token": own["id"]}
    assert revoked["actor"]["id"] == "alice"


def test_admins_revoke_anyones_token(registry_app: RegistryApp) -> None:
    token = make_user(registry_app, "carol")
    [row] = expect(call(registry_app, "GET", "/users/carol/tokens"), 200)
    expect(call(registry_app, "DELETE", f"/tokens/{row['id']}"), 204)
    assert error_of(call(registry_app, "GET", "/whoami", token), 401)
    assert error_of(call(registry_app, "DELETE", f"/tokens/{row['id']}"), 404)


def test_a_scoped_token_cannot_mint_a_broader_one(registry_app: RegistryApp) -> None:
    app = registry_app
    make_user(app, "frank")
    scoped = expect(call(app, "POST", "/users/frank/tokens", json={"scopes": ["pull"]}), 201)
    wider = call(app, "POST", "/users/frank/tokens", scoped["token"], json={"scopes": ["push"]})
    assert "cannot create" in error_of(wider, 403)["message"]
    unscoped = call(app, "POST", "/users/frank/tokens", scoped["token"], json={})
    assert error_of(unscoped, 403)
    same = call(app, "POST", "/users/frank/tokens", scoped["token"], json={"scopes": ["pull"]})
    assert expect(same, 201)["scopes"] == ["pull"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"expires_in_days": 100000}, "expires_in_days"),
        ({"scopes": "push"}, "scopes"),
        ({"scopes": ["has space"]}, "scopes"),
        ({"secret": "mine"}, "secret"),
    ],
)
def test_bad_token_input_is_422_naming_the_field(
    registry_app: RegistryApp, body: dict[str, Any], field: str
) -> None:
    error = error_of(call(registry_app, "POST", "/users/admin/tokens", json=body), 422)
    assert field in error["message"]


# --- teams -------------------------------------------------------------------


def test_teams_and_members(registry_app: RegistryApp) -> None:
    app = registry_app
    token = make_user(app, "gina")
    assert expect(call(app, "POST", "/teams", json={"name": "platform"}), 201)["members"] == []
    error_of(call(app, "POST", "/teams", json={"name": "platform"}), 409)

    team = expect(call(app, "POST", "/teams/platform/members", json={"user": "gina"}), 201)
    assert team["members"] == ["gina"]
    error_of(call(app, "POST", "/teams/platform/members", json={"user": "gina"}), 409)
    error_of(call(app, "POST", "/teams/platform/members", json={"user": "nobody"}), 404)
    error_of(call(app, "POST", "/teams/nope/members", json={"user": "gina"}), 404)
    assert whoami(app, token)["teams"] == ["platform"]
    assert expect(call(app, "GET", "/teams"), 200) == [
        {"name": "platform", "members": ["gina"], "created_at": team["created_at"]}
    ]

    expect(call(app, "DELETE", "/teams/platform/members/gina"), 204)
    error_of(call(app, "DELETE", "/teams/platform/members/gina"), 404)
    assert whoami(app, token)["teams"] == []
    actions = [e["resource"] for e in events(app, "team.member_add")]
    assert actions == [{"team": "platform", "user": "gina"}]
    assert len(events(app, "team.member_remove")) == 1
    assert error_of(call(app, "POST", "/teams", token, json={"name": "mine"}), 403)


# --- role bindings -----------------------------------------------------------


def test_role_bindings_reach_the_subject_and_the_policy(registry_app: RegistryApp) -> None:
    app = registry_app
    app.create_repo("files")
    token = make_user(app, "hana")
    url = "/generic/files/tool/1/tool.bin"
    denied = app.client.put(url, content=b"x", headers=app.headers(token))
    assert denied.status_code == 403, denied.text

    body = {"role": "writer", "repository": "files", "user": "hana"}
    binding = expect(call(app, "POST", "/role-bindings", json=body), 201)
    assert binding == {
        **body,
        "team": None,
        "id": binding["id"],
        "created_at": binding["created_at"],
    }
    assert whoami(app, token)["roles"] == ["writer:files"]
    allowed = app.client.put(url, content=b"x", headers=app.headers(token))
    assert allowed.status_code == 201, allowed.text

    [event] = events(app, "role_binding.create")
    assert event["resource"] == {"repository": "files", "role_binding": binding["id"]}
    assert event["details"] == body | {"team": None}

    expect(call(app, "DELETE", f"/role-bindings/{binding['id']}"), 204)
    assert whoami(app, token)["roles"] == []
    assert events(app, "role_binding.delete")[0]["resource"] == {"role_binding": binding["id"]}


def test_team_bindings_give_members_the_role(registry_app: RegistryApp) -> None:
    app = registry_app
    token = make_user(app, "ivan")
    expect(call(app, "POST", "/teams", json={"name": "ops"}), 201)
    expect(call(app, "POST", "/teams/ops/members", json={"user": "ivan"}), 201)
    expect(call(app, "POST", "/role-bindings", json={"role": "maintainer", "team": "ops"}), 201)
    assert whoami(app, token)["roles"] == ["maintainer"]
    listed = expect(call(app, "GET", "/role-bindings", params={"team": "ops"}), 200)
    assert [(b["role"], b["team"], b["repository"]) for b in listed] == [
        ("maintainer", "ops", None)
    ]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"role": "writer"}, 422, "exactly one of 'user' or 'team'"),
        ({"role": "writer", "user": "admin", "team": "t"}, 422, "exactly one"),
        ({"role": "owner", "user": "admin"}, 422, "role"),
        ({"role": "writer", "user": "admin", "repo": "files"}, 422, "repo"),
        ({"role": "writer", "user": "admin", "repository": "missing"}, 404, "missing"),
        ({"role": "writer", "user": "ghost"}, 404, "ghost"),
        ({"role": "admin", "user": "admin"}, 409, "already exists"),
    ],
)
def test_bad_role_bindings_are_refused(
    registry_app: RegistryApp, body: dict[str, Any], status: int, needle: str
) -> None:
    before = len(events(registry_app, "role_binding.create"))
    error = error_of(call(registry_app, "POST", "/role-bindings", json=body), status)
    assert needle in error["message"]
    assert len(events(registry_app, "role_binding.create")) == before


def test_the_last_global_admin_binding_cannot_be_removed(registry_app: RegistryApp) -> None:
    [binding] = expect(call(registry_app, "GET", "/role-bindings"), 200)
    assert (binding["role"], binding["user"], binding["repository"]) == ("admin", "admin", None)
    error = error_of(call(registry_app, "DELETE", f"/role-bindings/{binding['id']}"), 409)
    assert "last global admin" in error["message"]
    assert whoami(registry_app, ADMIN_TOKEN)["roles"] == ["admin"]
    assert events(registry_app, "role_binding.delete") == []


def test_role_bindings_are_admin_only(registry_app: RegistryApp) -> None:
    token = make_user(registry_app, "judy")
    body = {"role": "admin", "user": "judy"}
    assert error_of(call(registry_app, "POST", "/role-bindings", token, json=body), 403)
    assert error_of(call(registry_app, "GET", "/role-bindings", token), 403)
    assert whoami(registry_app, token)["roles"] == []


# --- whoami ------------------------------------------------------------------


def test_whoami(registry_app: RegistryApp) -> None:
    me = whoami(registry_app, ADMIN_TOKEN)
    assert me == {"id": "admin", "kind": "user", "roles": ["admin"], "teams": [], "scopes": []}
    assert whoami(registry_app, None)["kind"] == "anonymous"
    wrong = call(registry_app, "GET", "/whoami", "arb_wrong")
    assert "invalid credentials" in error_of(wrong, 401)["message"]


def test_identity_routes_are_in_the_openapi_schema(registry_app: RegistryApp) -> None:
    paths = registry_app.client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/users",
        "/api/v1/users/{name}",
        "/api/v1/teams/{team}/members",
        "/api/v1/users/{name}/tokens",
        "/api/v1/tokens/{token_id}",
        "/api/v1/role-bindings",
        "/api/v1/role-bindings/{binding_id}",
        "/api/v1/whoami",
    ):
        assert path in paths, path
