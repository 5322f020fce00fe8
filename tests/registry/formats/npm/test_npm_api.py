"""The npm repository through the ASGI app: publish guards, packuments, tags, deprecation, lineage.

Publish documents are built as the npm CLI builds them (see
:mod:`npm_builders`). Every refusal must leave nothing behind: no version,
no blob, no staged file.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import tarfile
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.fixtures_app import RegistryApp
from tests.registry.formats.npm.npm_builders import manifest, publish_document, tarball

ABBREVIATED = "application/vnd.npm.install-v1+json"


@pytest.fixture
def app(registry_app: RegistryApp) -> RegistryApp:
    registry_app.create_repo("js", "npm")
    return registry_app


def publish(
    app: RegistryApp, document: dict[str, Any] | bytes, name: str | None = None
) -> httpx.Response:
    if isinstance(document, dict):
        name = name or document["name"]
        body = json.dumps(document).encode()
    else:
        body = document
    assert name is not None
    path = name.replace("/", "%2f")
    headers = {**app.headers(), "Content-Type": "application/json"}
    return app.client.put(f"/npm/js/{path}", content=body, headers=headers)


def publish_package(app: RegistryApp, name: str, version: str, **fields: Any) -> bytes:
    published = manifest(name, version, **fields)
    data = tarball(published)
    response = publish(app, publish_document(name, version, data, published=published))
    assert response.status_code == 201, response.text
    return data


def count(app: RegistryApp, sql: str) -> int:
    with app.services.db.reader() as session:
        return int(session.connection().execute(text(sql)).scalar_one())


def stored_nothing(app: RegistryApp) -> None:
    assert count(app, "SELECT count(*) FROM versions") == 0
    assert count(app, "SELECT count(*) FROM files") == 0
    root = app.settings.blob_root
    assert root is not None
    assert not any((root / "staging").iterdir())
    assert not (root / "sha256").exists() or not any((root / "sha256").rglob("*/*"))


def packument(app: RegistryApp, name: str, accept: str | None = None) -> dict[str, Any]:
    headers = app.headers() | ({"Accept": accept} if accept else {})
    response = app.client.get(f"/npm/js/{name.replace('/', '%2f')}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_publish_packument_tarball(app: RegistryApp) -> None:
    data = publish_package(app, "@demo/lib", "1.0.0", license="MIT", dependencies={})
    full = packument(app, "@demo/lib")
    assert full["dist-tags"] == {"latest": "1.0.0"}
    version = full["versions"]["1.0.0"]
    assert version["_npmUser"] == {"name": "admin"}
    assert version["dist"]["tarball"] == "http://testserver/npm/js/@demo/lib/-/lib-1.0.0.tgz"
    assert full["time"]["1.0.0"] and full["_rev"].startswith("1-")

    short = app.client.get("/npm/js/@demo%2flib", headers={**app.headers(), "Accept": ABBREVIATED})
    assert short.headers["content-type"] == ABBREVIATED
    assert set(short.json()) == {"name", "modified", "dist-tags", "versions"}
    assert "_npmUser" not in short.json()["versions"]["1.0.0"]

    got = app.client.get("/npm/js/@demo/lib/-/lib-1.0.0.tgz", headers=app.headers())
    assert got.status_code == 200 and got.content == data
    one = app.client.get("/npm/js/@demo/lib/latest", headers=app.headers()).json()
    assert one["version"] == "1.0.0"
    assert count(app, "SELECT downloads FROM versions") == 1


def test_republishing_a_version_is_refused(app: RegistryApp) -> None:
    publish_package(app, "lib", "1.0.0")
    published = manifest("lib", "1.0.0", description="other bytes")
    again = publish(app, publish_document("lib", "1.0.0", tarball(published), published=published))
    assert again.status_code == 409
    assert "cannot publish over the previously published version" in again.json()["error"]


def test_dist_tags_deprecation_unpublish_and_lineage(app: RegistryApp) -> None:
    for version in ("1.0.0", "1.1.0", "2.0.0-beta.1"):
        publish_package(app, "lib", version)
    headers = {**app.headers(), "Content-Type": "application/json"}
    moved = app.client.put("/npm/js/-/package/lib/dist-tags/next", content=b'"2.0.0-beta.1"',
                           headers=headers)  # fmt: skip
    assert moved.status_code == 201, moved.text
    tags = app.client.get("/npm/js/-/package/lib/dist-tags", headers=app.headers()).json()
    assert tags == {"latest": "2.0.0-beta.1", "next": "2.0.0-beta.1"}
    app.client.put("/npm/js/-/package/lib/dist-tags/latest", content=b'"1.1.0"', headers=headers)
    removed = app.client.delete("/npm/js/-/package/lib/dist-tags/next", headers=app.headers())
    assert removed.status_code == 200
    bad_tag = app.client.put("/npm/js/-/package/lib/dist-tags/1.x", content=b'"1.1.0"',
                             headers=headers)  # fmt: skip
    assert bad_tag.status_code == 400

    document = packument(app, "lib")
    document["versions"]["1.0.0"]["deprecated"] = "use 1.1.0"
    assert publish(app, document).status_code == 201
    assert packument(app, "lib", ABBREVIATED)["versions"]["1.0.0"]["deprecated"] == "use 1.1.0"

    document = packument(app, "lib")
    del document["versions"]["2.0.0-beta.1"]
    put = app.client.put(f"/npm/js/lib/-rev/{document['_rev']}", content=json.dumps(document),
                         headers=headers)  # fmt: skip
    assert put.status_code == 201, put.text
    assert sorted(packument(app, "lib")["versions"]) == ["1.0.0", "1.1.0"]

    lineage = app.client.get("/api/v1/lineage/js/lib/1.0.0", headers=app.headers()).json()
    steps = [(s["kind"], s["facts"].get("tag")) for s in lineage["steps"]]
    assert ("pushed", None) in steps and ("tagged", "deprecated") in steps
    lineage = app.client.get("/api/v1/lineage/js/lib/1.1.0", headers=app.headers()).json()
    assert ("retagged", "latest") in [(s["kind"], s["facts"].get("tag")) for s in lineage["steps"]]
    lineage = app.client.get("/api/v1/lineage/js/lib/2.0.0-beta.1", headers=app.headers()).json()
    assert lineage["status"] == "deleted"

    everything = app.client.delete(f"/npm/js/lib/-rev/{document['_rev']}", headers=app.headers())
    assert everything.status_code == 200
    assert app.client.get("/npm/js/lib", headers=app.headers()).status_code == 404


def test_denied_license_is_refused_with_the_reason(app: RegistryApp) -> None:
    published = manifest("strong-copyleft", "1.0.0", license="AGPL-3.0-or-later")
    response = publish(
        app, publish_document("strong-copyleft", "1.0.0", tarball(published), published=published)
    )
    assert response.status_code == 403
    assert response.json()["error"] == (
        "denied by policy: license AGPL-3.0-or-later is on the deny list"
    )
    stored_nothing(app)


def test_policy_input_carries_facts_from_the_tarball(app: RegistryApp) -> None:
    publish_package(
        app,
        "facts",
        "1.0.0",
        license="(MIT OR Apache-2.0)",
        dependencies={"@scope/dep": "^1.0.0", "left": "~2"},
        engines={"node": ">=18"},
    )
    events = app.client.get(
        "/api/v1/audit/events", params={"action": "push"}, headers=app.headers()
    ).json()
    content = next(e for e in events if e["details"].get("stage") == "content")
    artifact = content["details"]["input"]["artifact"]
    assert artifact["sbom"] == {
        "licenses": ["Apache-2.0", "MIT"],
        "purls": ["pkg:npm/%40scope/dep", "pkg:npm/facts@1.0.0", "pkg:npm/left"],
    }
    assert artifact["scan"]["status"] == "complete"
    lineage = app.client.get("/api/v1/lineage/js/facts/1.0.0", headers=app.headers()).json()
    assert [s["kind"] for s in lineage["steps"]][:2] == ["pushed", "analysed"]
    package = artifact["package"]
    assert package["engines"] == {"node": ">=18"}
    assert package["dependencies"]["dependencies"] == {"@scope/dep": "^1.0.0", "left": "~2"}
    assert package["hashes"]["integrity"].startswith("sha512-")


def _tar(members: dict[str, bytes], *, kind: bytes = tarfile.REGTYPE, link: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if kind != tarfile.REGTYPE:
            info = tarfile.TarInfo("package/link")
            info.type = kind
            info.linkname = link
            archive.addfile(info)
    return buffer.getvalue()


def _bad_publishes() -> list[tuple[str, dict[str, Any] | bytes, str]]:
    good = manifest("lib", "1.0.0")
    good_json = json.dumps(good).encode()
    data = tarball(good)
    cases: list[tuple[str, dict[str, Any] | bytes, str]] = []
    cases.append(
        ("integrity mismatch", publish_document("lib", "1.0.0", data, integrity="sha512-" +
         base64.b64encode(bytes(64)).decode()), "dist.integrity does not match")
    )  # fmt: skip
    cases.append(
        ("shasum mismatch", publish_document("lib", "1.0.0", data, shasum="0" * 40),
         "dist.shasum")
    )  # fmt: skip
    cases.append(
        ("package.json not JSON",
         publish_document("lib", "1.0.0", tarball(b"{not json")), "is not valid JSON")
    )  # fmt: skip
    cases.append(
        ("tarball names another package",
         publish_document("lib", "1.0.0", tarball(manifest("evil", "1.0.0"))), "names 'evil'")
    )  # fmt: skip
    cases.append(
        ("tarball of another version",
         publish_document("lib", "1.0.0", tarball(manifest("lib", "9.9.9"))), "'9.9.9'")
    )  # fmt: skip
    cases.append(
        ("dotdot member",
         publish_document("lib", "1.0.0", _tar({"package/package.json": good_json,
                                                 "package/../../evil": b"x"})), "contains '..'")
    )  # fmt: skip
    cases.append(
        ("absolute member",
         publish_document("lib", "1.0.0", _tar({"package/package.json": good_json,
                                                 "/etc/passwd": b"x"})), "absolute path")
    )  # fmt: skip
    cases.append(
        ("symlink out",
         publish_document("lib", "1.0.0", _tar({"package/package.json": good_json},
                                               kind=tarfile.SYMTYPE, link="../../../etc")),
         "links outside the archive")
    )  # fmt: skip
    cases.append(
        ("not gzip", publish_document("lib", "1.0.0", os.urandom(300)), "not a valid gzip")
    )  # fmt: skip
    cases.append(
        ("two top-level directories",
         publish_document("lib", "1.0.0", _tar({"package/package.json": good_json,
                                                 "other/x.js": b""})), "one directory")
    )  # fmt: skip
    cases.append(
        ("invalid version",
         publish_document("lib", "1.0", tarball(manifest("lib", "1.0")),
                          published=manifest("lib", "1.0")), "not a valid version")
    )  # fmt: skip
    confused = manifest("lib", "1.0.0")
    cases.append(
        ("manifest confusion",
         publish_document("lib", "1.0.0",
                          tarball(manifest("lib", "1.0.0", dependencies={"evil": "*"})),
                          published=confused), "differ from package.json")
    )  # fmt: skip
    cases.append(("body not JSON", b'{"name": "lib", "versions": {', "not valid JSON"))
    cases.append(
        ("wrong attachment name", publish_document("lib", "1.0.0", data, attachment="x.tgz"),
         "expected lib-1.0.0.tgz")
    )  # fmt: skip
    two = publish_document("lib", "1.0.0", data)
    two["_attachments"]["lib-1.0.0.sigstore"] = {"data": "e30="}
    cases.append(("two attachments", two, "one tarball at a time"))
    return cases


def test_bad_publishes_are_refused_with_a_message_npm_prints(app: RegistryApp) -> None:
    for case, document, message in _bad_publishes():
        response = publish(app, document, name="lib")
        assert response.status_code == 400, (case, response.status_code, response.text)
        assert message in response.json()["error"], (case, response.text)
    stored_nothing(app)


def test_a_gzip_bomb_stops_at_the_limit(app: RegistryApp, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.packages.limits import archive_limits

    monkeypatch.setenv("ARBITER_PACKAGE_MAX_UNPACKED_SIZE", str(4 * 1024 * 1024))
    archive_limits.cache_clear()
    try:
        good = json.dumps(manifest("lib", "1.0.0")).encode()
        # 64 MiB of zeros in one member compresses to ~64 KiB: refused from its header.
        big = _tar({"package/package.json": good, "package/zeros": bytes(64 * 1024 * 1024)})
        assert len(big) < 200_000
        response = publish(app, publish_document("lib", "1.0.0", big))
        assert response.status_code == 400
        assert "ARBITER_PACKAGE_MAX_UNPACKED_SIZE" in response.json()["error"]
        # 32 MiB of zeros that are no tar at all: refused at the first header.
        endless = gzip.compress(bytes(32 * 1024 * 1024))
        response = publish(app, publish_document("lib", "1.0.0", endless))
        assert response.status_code == 400
        stored_nothing(app)
    finally:
        archive_limits.cache_clear()


def test_auth_login_whoami(app: RegistryApp) -> None:
    anonymous = app.client.get("/npm/js/-/whoami")
    assert anonymous.status_code == 401
    assert "npm login" in anonymous.json()["error"]
    assert app.client.get("/npm/js/-/whoami", headers=app.headers()).json() == {"username": "admin"}
    token = app.headers()["Authorization"].removeprefix("Bearer ")
    login = app.client.put(
        "/npm/js/-/user/org.couchdb.user:admin", json={"name": "admin", "password": token}
    )
    assert login.status_code == 201
    assert login.json()["token"] == token
    wrong = app.client.put(
        "/npm/js/-/user/org.couchdb.user:admin", json={"name": "admin", "password": "nope"}
    )
    assert wrong.status_code == 401
    assert app.client.post("/npm/js/-/v1/login").status_code == 404
    publish_package(app, "lib", "1.0.0")
    denied = app.client.get("/npm/js/lib")
    assert denied.status_code == 401
    assert "anonymous subjects may only pull from public repositories" in denied.json()["error"]
