"""Packuments served from rendered bodies: the same bytes as a plain rendering, never stale.

A rendered packument is reused only while the rows it came from are equal to
the rows just read, so every change (publish, dist-tag, deprecation,
unpublish), made by this app, by another app over the same database (another
worker) or by anything else writing the rows, shows in the next GET.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import select

from registry.db.models import ArtifactFile, Package, Repository, Tag, Version
from registry.formats.npm import packument
from registry.formats.npm.lookups import PackageState, Tarball, VersionRow
from registry.formats.npm.rendered import RenderedDocuments
from tests.fixtures_app import RegistryApp, make_registry_app
from tests.registry.formats.npm.npm_builders import manifest, publish_document, tarball

ABBREVIATED = "application/vnd.npm.install-v1+json"
# Not ASCII: the full document is sent as UTF-8, the abbreviated one \u-escaped.
UNICODE = "\u00fcn\u00efcode \u2013 and \u2028 too"
BASE = "http://testserver/npm/js"


@pytest.fixture
def app(registry_app: RegistryApp) -> RegistryApp:
    registry_app.create_repo("js", "npm")
    return registry_app


def json_headers(app: RegistryApp) -> dict[str, str]:
    return {**app.headers(), "Content-Type": "application/json"}


def publish(app: RegistryApp, name: str, version: str, **fields: Any) -> None:
    published = manifest(name, version, **fields)
    document = publish_document(name, version, tarball(published), published=published)
    headers = json_headers(app)
    response = app.client.put(f"/npm/js/{name}", content=json.dumps(document), headers=headers)
    assert response.status_code == 201, response.text


def set_tag(app: RegistryApp, tag: str, version: str) -> None:
    headers = json_headers(app)
    path = f"/npm/js/-/package/lib/dist-tags/{tag}"
    response = app.client.put(path, content=json.dumps(version), headers=headers)
    assert response.status_code == 201, response.text


def put_document(app: RegistryApp, document: dict[str, Any], path: str = "/npm/js/lib") -> None:
    """Send a changed packument back, as ``npm deprecate`` and ``npm unpublish pkg@v`` do."""
    headers = json_headers(app)
    response = app.client.put(path, content=json.dumps(document), headers=headers)
    assert response.status_code == 201, response.text


def get(app: RegistryApp, name: str, accept: str | None = None) -> bytes:
    headers = app.headers() | ({"Accept": accept} if accept else {})
    response = app.client.get(f"/npm/js/{name}", headers=headers)
    assert response.status_code == 200, response.text
    body: bytes = response.content
    return body


def both(app: RegistryApp, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The full and the abbreviated packument, each asked for twice (the second is reused)."""
    full, short = get(app, name), get(app, name, ABBREVIATED)
    assert get(app, name) == full and get(app, name, ABBREVIATED) == short
    return json.loads(full), json.loads(short)


def stored_state(app: RegistryApp, name: str) -> PackageState:
    """The package read through the ORM, independently of the read path under test."""
    with app.services.db.reader() as session:
        package = session.exec(
            select(Package)
            .join(Repository, Repository.id == Package.repository_id)  # type: ignore[arg-type]
            .where(Repository.name == "js", Package.name == name)
        ).one()
        state = PackageState(name=name)
        versions = session.exec(
            select(Version).where(Version.package_id == package.id).order_by(Version.id)  # type: ignore[arg-type]
        ).all()
        for row in versions:
            file = session.exec(
                select(ArtifactFile).where(ArtifactFile.version_id == row.id)
            ).first()
            found = None
            if file is not None:
                found = Tarball(file.filename, file.blob_digest, file.size, file.meta)
            created = row.created_at.replace(tzinfo=row.created_at.tzinfo or UTC)
            state.versions.append(VersionRow(row.id or 0, row.version, row.meta, created, found))
        by_id = {row.id: row.version for row in versions}
        tags = session.exec(select(Tag).where(Tag.package_id == package.id)).all()
        state.tags = {tag.name: by_id[tag.version_id] for tag in tags}
        return state


def test_served_bodies_are_the_plain_rendering(app: RegistryApp) -> None:
    publish(app, "lib", "1.0.0", license="MIT", dependencies={"left": "^1"})
    publish(app, "lib", "1.1.0", description=UNICODE, engines={"node": ">=18"})
    publish(app, "lib", "2.0.0-beta.1", bin={"lib": "cli.js"})
    set_tag(app, "latest", "1.1.0")
    for _ in range(2):  # rendered, then reused
        state = stored_state(app, "lib")
        full = app.client.get("/npm/js/lib", headers=app.headers())
        assert full.headers["content-type"] == "application/json"
        plain_full = json.dumps(
            packument.full(BASE, state), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode()
        assert full.content == plain_full
        short = app.client.get("/npm/js/lib", headers={**app.headers(), "Accept": ABBREVIATED})
        assert short.headers["content-type"] == ABBREVIATED
        plain_short = json.dumps(packument.abbreviated(BASE, state), separators=(",", ":"))
        assert short.content == plain_short.encode()
        assert json.loads(full.content)["description"] == UNICODE


def test_every_change_shows_in_the_next_packument(app: RegistryApp) -> None:
    publish(app, "lib", "1.0.0")
    full, short = both(app, "lib")
    assert list(short["versions"]) == ["1.0.0"] and short["dist-tags"] == {"latest": "1.0.0"}

    publish(app, "lib", "1.1.0")
    full, short = both(app, "lib")
    assert list(short["versions"]) == ["1.0.0", "1.1.0"]
    assert short["dist-tags"] == full["dist-tags"] == {"latest": "1.1.0"}
    assert "1.1.0" in full["time"]

    set_tag(app, "next", "1.0.0")
    full, short = both(app, "lib")
    assert short["dist-tags"] == full["dist-tags"] == {"latest": "1.1.0", "next": "1.0.0"}

    set_tag(app, "next", "1.1.0")
    assert both(app, "lib")[1]["dist-tags"]["next"] == "1.1.0"

    removed = app.client.delete("/npm/js/-/package/lib/dist-tags/next", headers=app.headers())
    assert removed.status_code == 200, removed.text
    full, short = both(app, "lib")
    assert short["dist-tags"] == full["dist-tags"] == {"latest": "1.1.0"}

    document = json.loads(get(app, "lib"))
    document["versions"]["1.0.0"]["deprecated"] = "use 1.1.0"
    put_document(app, document)
    full, short = both(app, "lib")
    assert short["versions"]["1.0.0"]["deprecated"] == "use 1.1.0"
    assert full["versions"]["1.0.0"]["deprecated"] == "use 1.1.0"

    del document["versions"]["1.0.0"]["deprecated"]
    put_document(app, document)
    assert "deprecated" not in both(app, "lib")[1]["versions"]["1.0.0"]

    document = json.loads(get(app, "lib"))
    del document["versions"]["1.1.0"]
    document["dist-tags"] = {"latest": "1.0.0"}
    put_document(app, document, f"/npm/js/lib/-rev/{document['_rev']}")
    full, short = both(app, "lib")
    assert list(short["versions"]) == list(full["versions"]) == ["1.0.0"]
    assert "1.1.0" not in full["time"]

    everything = app.client.delete(f"/npm/js/lib/-rev/{full['_rev']}", headers=app.headers())
    assert everything.status_code == 200, everything.text
    for accept in (None, ABBREVIATED):
        headers = app.headers() | ({"Accept": accept} if accept else {})
        assert app.client.get("/npm/js/lib", headers=headers).status_code == 404


def test_every_packument_read_is_decided_and_audited(app: RegistryApp) -> None:
    publish(app, "lib", "1.0.0")
    before = _pulls(app)
    for _ in range(3):
        get(app, "lib", ABBREVIATED)
        get(app, "lib")
    assert _pulls(app) == before + 6


def _pulls(app: RegistryApp) -> int:
    with app.services.db.reader() as session:
        sql = text("SELECT count(*) FROM audit_events WHERE action = 'pull'")
        return int(session.connection().execute(sql).scalar_one())


@pytest.fixture
def second_worker(app: RegistryApp, tmp_path: Path, database_url: str) -> Iterator[RegistryApp]:
    """Another app over the same database and blobs, as another server worker is."""
    other = make_registry_app(tmp_path, database_url)
    with other.client:
        yield other


def test_changes_by_another_worker_show(app: RegistryApp, second_worker: RegistryApp) -> None:
    publish(app, "lib", "1.0.0")
    publish(app, "lib", "1.1.0")
    assert both(app, "lib")[1]["dist-tags"] == {"latest": "1.1.0"}

    set_tag(second_worker, "next", "1.0.0")
    full, short = both(app, "lib")
    assert short["dist-tags"] == full["dist-tags"] == {"latest": "1.1.0", "next": "1.0.0"}

    publish(second_worker, "lib", "1.2.0")
    assert list(both(app, "lib")[1]["versions"]) == ["1.0.0", "1.1.0", "1.2.0"]


def test_rows_changed_by_anything_else_show(app: RegistryApp) -> None:
    """No hook of the npm code invalidates: whatever writes the rows is seen on the next read."""
    publish(app, "lib", "1.0.0")
    both(app, "lib")
    with app.services.db.writer() as session:
        row = session.exec(select(Version).where(Version.version == "1.0.0")).one()
        row.meta = {**row.meta, "deprecated": "changed underneath"}
        session.add(row)
    full, short = both(app, "lib")
    assert short["versions"]["1.0.0"]["deprecated"] == "changed underneath"
    assert full["versions"]["1.0.0"]["deprecated"] == "changed underneath"


# -- the store of rendered bodies --------------------------------------------------------


def test_a_body_is_reused_only_for_an_equal_source() -> None:
    documents = RenderedDocuments()
    renders: list[str] = []

    def render(body: str) -> Callable[[], bytes]:
        def rendering() -> bytes:
            renders.append(body)
            return body.encode()

        return rendering

    key = ("js", "lib", BASE, "full")
    assert documents.body(key, ("a", 1), render("one")) == b"one"
    assert documents.body(key, ("a", 1), render("two")) == b"one"
    assert documents.body(key, ("a", 2), render("three")) == b"three"
    assert documents.body(key, ("a", 1), render("four")) == b"four"
    assert documents.body((*key[:3], "abbreviated"), ("a", 1), render("five")) == b"five"
    assert renders == ["one", "three", "four", "five"]


def test_bodies_are_bounded_in_number_and_size() -> None:
    documents = RenderedDocuments(max_documents=2, max_bytes=10)
    documents.body(("a",), 1, lambda: b"1234")
    documents.body(("b",), 1, lambda: b"1234")
    documents.body(("a",), 1, lambda: b"never")  # reused: a is now the most recent
    documents.body(("c",), 1, lambda: b"1234")  # two at most: b goes
    assert len(documents) == 2
    assert documents.body(("b",), 1, lambda: b"again") == b"again"
    documents.body(("d",), 1, lambda: b"123456789")  # ten bytes at most: all others go
    assert len(documents) == 1
    documents.body(("e",), 1, lambda: b"12345678901")  # larger than the bound: not kept
    assert len(documents) == 1
    assert documents.body(("e",), 1, lambda: b"rendered") == b"rendered"
