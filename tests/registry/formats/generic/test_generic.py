"""The generic format end to end through the ASGI app, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os

import pytest
from sqlalchemy import text

from tests.fixtures_app import RegistryApp

pytestmark = pytest.mark.usefixtures("registry_app")


def _events(app: RegistryApp, outcome: str | None = None) -> int:
    query = "SELECT count(*) FROM audit_events"
    params = {}
    if outcome is not None:
        query += " WHERE outcome = :outcome"
        params["outcome"] = outcome
    with app.services.db.reader() as session:
        return int(session.connection().execute(text(query), params).scalar_one())


def _blob_files(app: RegistryApp) -> list[str]:
    root = app.settings.blob_root
    assert root is not None
    found = []
    for directory, _dirs, files in os.walk(root / "sha256") if (root / "sha256").exists() else []:
        found.extend(os.path.join(directory, f) for f in files)
    return found


def test_push_pull_head_list_delete(registry_app: RegistryApp) -> None:
    app = registry_app
    app.create_repo("files")
    body = os.urandom(256 * 1024 + 7)
    sha = hashlib.sha256(body).hexdigest()
    url = "/generic/files/tool/1.0.0/tool.tar.gz"

    put = app.client.put(url, content=body, headers={**app.headers(), "X-Checksum-Sha256": sha})
    assert put.status_code == 201, put.text
    assert put.json()["sha256"] == sha

    got = app.client.get(url, headers=app.headers())
    assert got.status_code == 200
    assert got.content == body
    assert got.headers["X-Checksum-Sha256"] == sha

    head = app.client.head(url, headers=app.headers())
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(body))
    assert head.content == b""

    versions = app.client.get("/generic/files/tool", headers=app.headers()).json()
    assert [v["version"] for v in versions["versions"]] == ["1.0.0"]
    assert versions["versions"][0]["downloads"] == 1
    files = app.client.get("/generic/files/tool/1.0.0/", headers=app.headers()).json()
    assert files["files"][0]["sha256"] == sha
    assert files["files"][0]["size"] == len(body)

    assert app.client.delete(url, headers=app.headers()).status_code == 204
    assert app.client.get(url, headers=app.headers()).status_code == 404


def test_same_content_twice_is_idempotent_other_content_conflicts(
    registry_app: RegistryApp,
) -> None:
    app = registry_app
    app.create_repo("files")
    url = "/generic/files/pkg/2.0/a.bin"
    assert app.client.put(url, content=b"one", headers=app.headers()).status_code == 201
    assert app.client.put(url, content=b"one", headers=app.headers()).status_code == 201
    conflict = app.client.put(url, content=b"two", headers=app.headers())
    assert conflict.status_code == 409
    assert "already exists" in conflict.json()["error"]["message"]
    assert app.client.get(url, headers=app.headers()).content == b"one"


def test_checksum_mismatch_stores_nothing(registry_app: RegistryApp) -> None:
    app = registry_app
    app.create_repo("files")
    wrong = hashlib.sha256(b"something else").hexdigest()
    response = app.client.put(
        "/generic/files/pkg/1/a.bin",
        content=b"payload",
        headers={**app.headers(), "X-Checksum-Sha256": wrong},
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert _blob_files(app) == []
    listing = app.client.get("/generic/files/pkg", headers=app.headers())
    assert listing.status_code == 404


def test_body_over_max_upload_size_is_413_and_stores_nothing(
    tmp_path: object, database_url: str
) -> None:
    from tests.fixtures_app import make_registry_app

    app = make_registry_app(tmp_path, database_url, max_upload_size=1000)  # type: ignore[arg-type]
    with app.client:
        app.create_repo("files")
        response = app.client.put(
            "/generic/files/pkg/1/a.bin", content=b"x" * 5000, headers=app.headers()
        )
        assert response.status_code == 413

        def chunks():  # no Content-Length: the limit must hold while streaming
            for _ in range(10):
                yield b"y" * 500

        streamed = app.client.put(
            "/generic/files/pkg/1/b.bin", content=chunks(), headers=app.headers()
        )
        assert streamed.status_code == 413
        assert _blob_files(app) == []
        assert app.client.get("/generic/files/pkg", headers=app.headers()).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/generic/files/pkg/%2e%2e/a.bin",
        "/generic/files/pkg/1/..",
        "/generic/files//1/a.bin",
        "/generic/files/pkg/1/a%00.bin",
        "/generic/files/pkg/1/a%5Cb.bin",
        "/generic/files/%2Fetc/1/passwd",
        "/generic/files/pkg/1/a/b/c",
    ],
)
def test_bad_paths_are_400(registry_app: RegistryApp, path: str) -> None:
    app = registry_app
    app.create_repo("files")
    response = app.client.put(path, content=b"x", headers=app.headers())
    assert response.status_code == 400, (path, response.status_code, response.text)
    assert response.json()["error"]["message"]
    assert _blob_files(app) == []


def test_unknown_repository_is_404(registry_app: RegistryApp) -> None:
    response = registry_app.client.put(
        "/generic/nope/pkg/1/a.bin", content=b"x", headers=registry_app.headers()
    )
    assert response.status_code == 404


def test_a_repository_of_another_format_is_refused_and_keeps_nothing(
    registry_app: RegistryApp,
) -> None:
    app = registry_app
    app.create_repo("js", "npm")
    put = app.client.put("/generic/js/tool/1.0/tool.bin", content=b"data", headers=app.headers())
    assert put.status_code == 400
    assert "repository 'js' holds npm artifacts, not generic" in put.text
    got = app.client.get("/generic/js/tool/1.0/tool.bin", headers=app.headers())
    assert got.status_code == 400
    with app.services.db.reader() as session:
        assert session.exec(text("SELECT count(*) FROM packages")).one()[0] == 0
    assert _blob_files(app) == []


def test_wrong_credentials_are_401_with_challenge(registry_app: RegistryApp) -> None:
    app = registry_app
    app.create_repo("files")
    response = app.client.get(
        "/generic/files/pkg/1/a.bin", headers={"Authorization": "Bearer arb_wrong"}
    )
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    basic = app.client.get("/generic/files/pkg/1/a.bin", auth=("admin", "not-a-token"))
    assert basic.status_code == 401


def test_anonymous_is_asked_to_authenticate_on_private_repository(
    registry_app: RegistryApp,
) -> None:
    app = registry_app
    app.create_repo("files")
    app.client.put("/generic/files/pkg/1/a.bin", content=b"x", headers=app.headers())
    response = app.client.get("/generic/files/pkg/1/a.bin")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert _events(app, "denied") >= 1


def test_basic_auth_with_user_and_token(registry_app: RegistryApp) -> None:
    from tests.fixtures_app import ADMIN_TOKEN

    app = registry_app
    app.create_repo("files")
    put = app.client.put(
        "/generic/files/pkg/1/a.bin", content=b"hello", auth=("admin", ADMIN_TOKEN)
    )
    assert put.status_code == 201
    got = app.client.get("/generic/files/pkg/1/a.bin", auth=("__token__", ADMIN_TOKEN))
    assert got.content == b"hello"


def test_every_action_is_audited_in_order(registry_app: RegistryApp) -> None:
    app = registry_app
    app.create_repo("files")
    before = _events(app)
    url = "/generic/files/pkg/1/a.bin"
    # request + content decisions, then the analysis (SBOM, findings) of what entered
    app.client.put(url, content=b"abc", headers=app.headers())
    app.client.get(url, headers=app.headers())
    app.client.delete(url, headers=app.headers())
    assert _events(app) - before == 5
    with app.services.db.reader() as session:
        rows = (
            session.connection()
            .execute(text("SELECT action, outcome FROM audit_events ORDER BY seq DESC LIMIT 5"))
            .all()
        )
    assert [tuple(r) for r in reversed(rows)] == [
        ("push", "allowed"),
        ("push", "allowed"),
        ("analyse", "committed"),
        ("pull", "allowed"),
        ("delete", "allowed"),
    ]
