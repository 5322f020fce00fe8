"""GC of OCI images: the blobs of a manifest deleted through ``DELETE /v2/...`` go with the
next collection (bytes, links and usage), while layers another image shares, an index's
children, trashed versions and pushes in progress keep theirs; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, text
from sqlmodel import col

from audit import load_or_create_signing_key, verify_log
from registry.db import Database
from registry.db.oci_models import OciBlobLink
from registry.formats.oci import records
from tests.fixtures_app import RegistryApp
from tests.registry.conftest import ServerFactory
from tests.registry.formats.oci.oci_helpers import (
    OCI_MANIFEST,
    descriptor,
    error_code,
    make_image,
    make_index,
    push_blob,
    push_image,
    push_manifest,
    sha256,
)
from tests.registry.retention.conftest import RetentionApp, retention_app

__all__ = ["retention_app"]

NAME = "images/app"


def _stored(blob_root: Path, digest: str) -> bool:
    hexa = digest.removeprefix("sha256:")
    return (blob_root / "sha256" / hexa[:2] / hexa).is_file()


def _pulls_intact(client: Any, name: str, digest: str, headers: dict[str, str]) -> bool:
    """The blob comes back from ``name`` and hashes to its digest."""
    got = client.get(f"/v2/{name}/blobs/{digest}", headers=headers)
    return bool(got.status_code == 200 and sha256(got.content) == digest)


def _gc(client: Any, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.post("/api/v1/gc", params={"grace_minutes": 0, **params}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_gc_reclaims_a_deleted_manifests_blobs_and_keeps_shared_layers(
    server_factory: ServerFactory, database_url: str
) -> None:
    server = server_factory(env={"ARBITER_DATABASE_URL": database_url})
    h = server.headers()
    shared = os.urandom(4096)
    dropped = make_image(layers=1, shared=[shared])  # images/app:v1, deleted below
    sibling = make_image(layers=1, shared=[shared])  # the same repository, another image
    other = make_image(layers=1, shared=[shared])  # another repository
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for repository in ("images", "mirror"):
            created = client.post(
                "/api/v1/repositories", json={"name": repository, "format": "oci"}, headers=h
            )
            assert created.status_code == 201, created.text
        push_image(client, "", NAME, dropped, "v1", h)
        push_image(client, "", "images/tool", sibling, "v1", h)
        push_image(client, "", "mirror/base", other, "v1", h)
        before = client.get("/api/v1/usage", headers=h).json()["repositories"]

        deleted = client.delete(f"/v2/{NAME}/manifests/{dropped.digest}", headers=h)
        assert deleted.status_code == 202, deleted.text
        own = [sha256(dropped.config), sha256(dropped.layers[1])]
        links = {f"{NAME}@{digest}" for digest in (*own, sha256(shared))}

        dry = _gc(client, h, dry_run=True)
        assert links <= set(dry["links"]) and set(own) <= set(dry["digests"])
        assert all(_stored(server.data / "blobs", d) for d in own), "a dry run deletes nothing"

        done = _gc(client, h)
        assert links <= set(done["links"]) and done["unlinked"] >= len(links)
        assert {*own, dropped.digest} <= set(done["digests"])
        assert sha256(shared) not in done["digests"]
        for digest in (*own, dropped.digest):
            assert not _stored(server.data / "blobs", digest), f"{digest} was not reclaimed"
            assert client.head(f"/v2/{NAME}/blobs/{digest}", headers=h).status_code == 404
        assert client.head(f"/v2/{NAME}/blobs/{sha256(shared)}", headers=h).status_code == 404

        # the shared layer and both other images are intact, bytes verified on pull
        for name, image in (("images/tool", sibling), ("mirror/base", other)):
            manifest = client.get(f"/v2/{name}/manifests/v1", headers=h)
            assert manifest.status_code == 200 and sha256(manifest.content) == image.digest
            for digest in image.blobs():
                assert _pulls_intact(client, name, digest, h), (name, digest)

        # usage: the deleted manifest and the blobs only it used left "images", nothing else
        after = client.get("/api/v1/usage", headers=h).json()["repositories"]
        assert after == done["usage"]
        freed = len(dropped.manifest) + len(dropped.config) + len(dropped.layers[1])
        assert before["images"]["bytes"] - after["images"]["bytes"] == freed
        assert before["images"]["blobs"] - after["images"]["blobs"] == 3
        assert after["mirror"] == before["mirror"]
        assert _gc(client, h)["unlinked"] == 0

    db = Database(database_url)
    try:
        with db.reader() as session:
            conn = session.connection()
            recorded = [
                json.loads(details)
                for details in conn.execute(
                    text("SELECT details FROM audit_events WHERE action = 'gc.run' ORDER BY seq")
                ).scalars()
            ]
            verifier = load_or_create_signing_key(server.data / "keys" / "audit-ed25519.pem")
            verify_log(conn, verifier.verifier())
    finally:
        db.dispose()
    assert len(recorded) == 2, "one event per collection, none for the dry run"
    assert links <= set(recorded[0]["links"]) and set(own) <= set(recorded[0]["digests"])
    assert recorded[0]["unlinked"] == done["unlinked"] and not recorded[0]["links_truncated"]


def test_an_index_keeps_its_children_and_their_blobs(registry_app: RegistryApp) -> None:
    app, h = registry_app, registry_app.headers()
    app.create_repo("images", "oci")
    kept, deleted_child, loose = make_image(), make_image(), make_image()
    for image in (kept, deleted_child, loose):
        push_image(app.client, "", NAME, image, image.digest, h)  # untagged
    index = make_index([kept, deleted_child])
    assert push_manifest(app.client, "", NAME, "v1", index, h).status_code == 201
    for image in (loose, deleted_child):  # the index still names the child
        assert (
            app.client.delete(f"/v2/{NAME}/manifests/{image.digest}", headers=h).status_code == 202
        )

    first = _gc(app.client, h)
    assert set(loose.blobs()) | {loose.digest} <= set(first["digests"])
    for image in (kept, deleted_child):
        for digest in image.blobs():
            assert digest not in first["digests"]
            assert _pulls_intact(app.client, NAME, digest, h), digest
    assert deleted_child.digest not in first["digests"], "the index holds the child's bytes"
    assert app.client.get(f"/v2/{NAME}/manifests/{kept.digest}", headers=h).status_code == 200

    # without the index, the deleted child's blobs go; the child still there keeps its own
    assert app.client.delete(f"/v2/{NAME}/manifests/{sha256(index)}", headers=h).status_code == 202
    second = _gc(app.client, h)
    gone = set(deleted_child.blobs()) | {deleted_child.digest, sha256(index)}
    assert gone <= set(second["digests"])
    for digest in kept.blobs():
        assert _pulls_intact(app.client, NAME, digest, h), digest


def test_referrers_keep_their_blobs_and_a_blob_named_as_subject(registry_app: RegistryApp) -> None:
    app, h = registry_app, registry_app.headers()
    app.create_repo("images", "oci")
    image = make_image()
    push_image(app.client, "", NAME, image, "v1", h)
    kind = "application/vnd.example.signature"
    signature = make_image(1, subject=descriptor(OCI_MANIFEST, image.manifest), artifact_type=kind)
    push_image(app.client, "", NAME, signature, signature.digest, h)
    blob = os.urandom(512)  # a subject may be any content; this one is a blob of the image
    push_blob(app.client, "", NAME, blob, h)
    note = make_image(1, subject=descriptor("application/octet-stream", blob), artifact_type=kind)
    push_image(app.client, "", NAME, note, note.digest, h)
    assert app.client.delete(f"/v2/{NAME}/manifests/{image.digest}", headers=h).status_code == 202

    done = _gc(app.client, h)
    assert set(image.blobs()) <= set(done["digests"])
    assert f"{NAME}@{sha256(blob)}" not in done["links"]
    for digest in (*signature.blobs(), *note.blobs(), sha256(blob)):
        assert _pulls_intact(app.client, NAME, digest, h), digest
    referrers = app.client.get(f"/v2/{NAME}/referrers/{image.digest}", headers=h).json()
    assert signature.digest in {m["digest"] for m in referrers["manifests"]}


def _backdate(app: RegistryApp, hours: float) -> None:
    """Every blob and link as if pushed ``hours`` ago."""
    when = f"-{hours} hours"
    with app.services.db.writer() as session:
        conn = session.connection()
        shift: dict[str, Any]
        if conn.dialect.name == "postgresql":
            shift = {"shift": hours * 3600}
            sql = "UPDATE {} SET created_at = created_at - make_interval(secs => :shift)"
        else:
            shift = {"shift": when}
            sql = "UPDATE {} SET created_at = datetime(created_at, :shift)"
        for table in ("blobs", "oci_blob_links"):
            conn.execute(text(sql.format(table)), shift)


def test_young_links_and_pushes_in_progress_keep_their_blobs(registry_app: RegistryApp) -> None:
    app, h = registry_app, registry_app.headers()
    app.create_repo("images", "oci")
    image = make_image()
    push_image(app.client, "", NAME, image, "v1", h)
    _backdate(app, 3)
    assert app.client.delete(f"/v2/{NAME}/manifests/{image.digest}", headers=h).status_code == 202
    blobs = set(image.blobs())

    # deleted a moment ago: its links are inside the grace period, and so its (old) blobs
    young = _gc(app.client, h, grace_minutes=60)
    assert young["unlinked"] == 0 and not blobs & set(young["digests"])

    # an upload open in the image: its staged links may be what the coming manifest needs
    started = app.client.post(f"/v2/{NAME}/blobs/uploads/", headers=h)
    assert started.status_code == 202, started.text
    uploading = _gc(app.client, h)
    assert uploading["unlinked"] == 0 and not blobs & set(uploading["digests"])
    for digest in blobs:
        assert _pulls_intact(app.client, NAME, digest, h), digest

    cancelled = app.client.delete(started.headers["location"], headers=h)
    assert cancelled.status_code == 204, cancelled.text
    done = _gc(app.client, h)
    assert done["unlinked"] == len(blobs) and blobs <= set(done["digests"])
    assert done["usage"]["images"] == {"bytes": 0, "blobs": 0, "versions": 0}


def test_a_trashed_manifest_keeps_its_links_until_it_is_purged(
    retention_app: RetentionApp,
) -> None:
    app, h = retention_app, retention_app.headers()
    app.create_repo("images", "oci")
    tagged, loose = make_image(), make_image()
    push_image(app.client, "", NAME, tagged, "v1", h)
    push_image(app.client, "", NAME, loose, loose.digest, h)
    app.set_rules({"rules": [{"name": "untagged", "untagged": True}], "recovery_days": 14})
    assert {e["version"] for e in app.run()["report"]["deleted"]} == {loose.digest}

    collected = _gc(app.client, h)
    assert not set(loose.blobs()) & set(collected["digests"])
    assert not {f"{NAME}@{digest}" for digest in loose.blobs()} & set(collected["links"])
    restored = app.client.post(
        "/api/v1/retention/restore",
        json={"repository": "images", "package": "app", "version": loose.digest},
        headers=h,
    )
    assert restored.status_code == 200, restored.text
    assert app.client.get(f"/v2/{NAME}/manifests/{loose.digest}", headers=h).status_code == 200
    for digest in loose.blobs():
        assert _pulls_intact(app.client, NAME, digest, h), digest


def test_a_link_removed_while_its_manifest_was_decided_fails_the_push(
    registry_app: RegistryApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, h = registry_app, registry_app.headers()
    app.create_repo("images", "oci")
    image = make_image(layers=1)
    for data in image.blobs().values():
        push_blob(app.client, "", NAME, data, h)
    layer = sha256(image.layers[0])
    store = records.store_manifest

    def collected_meanwhile(session: Any, *args: Any, **kwargs: Any) -> Any:
        session.execute(delete(OciBlobLink).where(col(OciBlobLink.digest) == layer))  # as GC would
        return store(session, *args, **kwargs)

    monkeypatch.setattr(records, "store_manifest", collected_meanwhile)
    pushed = push_manifest(app.client, "", NAME, "v1", image.manifest, h)
    assert pushed.status_code == 400 and error_code(pushed) == "MANIFEST_BLOB_UNKNOWN", pushed.text
    assert layer in pushed.text
    assert app.client.get(f"/v2/{NAME}/manifests/v1", headers=h).status_code == 404
