"""Staged blobs no manifest ever referenced are swept after the grace period; linked ones stay."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from registry.formats.oci import gc
from registry.gc import references
from tests.fixtures_app import RegistryApp
from tests.registry.formats.oci.oci_helpers import make_image, push_blob, push_image, sha256

NAME = "images/app"


@pytest.fixture
def oci(registry_app: RegistryApp) -> RegistryApp:
    registry_app.create_repo("images", "oci")
    return registry_app


def test_sweep_removes_stale_staged_blobs_and_abandoned_uploads(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    image = make_image(layers=1)
    push_image(client, "", NAME, image, "v1", h)
    orphan = os.urandom(2048)
    push_blob(client, "", NAME, orphan, h)
    shared = image.layers[0]  # linked in app, staged in a second image
    push_blob(client, "", "images/other", shared, h)
    location = client.post(f"/v2/{NAME}/blobs/uploads/", headers=h).headers["location"]
    services = oci.services

    fresh = gc.sweep(services.db, services.blobs)
    assert (fresh.links, fresh.uploads) == (0, 0)

    later = datetime.now(UTC) + gc.STAGED_GRACE + timedelta(minutes=1)
    with services.db.reader() as session:
        upload_id = session.connection().execute(text("SELECT upload_id FROM oci_uploads")).scalar()
    services.blobs.uploads.cancel(upload_id)  # the blob store swept the idle bytes
    report = gc.sweep(services.db, services.blobs, now=later)
    assert report.links == 2  # the orphan, and the shared layer's staged link in "other"
    assert report.uploads == 1
    assert client.head(f"/v2/{NAME}/blobs/{sha256(orphan)}", headers=h).status_code == 404
    with services.db.reader() as session:  # the orphan's bytes are now the registry GC's
        referenced = references.still_referenced(
            session.connection(), [sha256(orphan), sha256(shared)]
        )
    assert referenced == {sha256(shared)}
    assert client.head(f"/v2/images/other/blobs/{sha256(shared)}", headers=h).status_code == 404
    assert client.get(f"/v2/{NAME}/blobs/{sha256(shared)}", headers=h).content == shared
    assert client.get(f"/v2/{NAME}/manifests/v1", headers=h).status_code == 200
    assert client.get(location, headers=h).status_code == 404


def test_deleting_the_last_manifest_restages_its_blobs(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    kept, dropped = make_image(layers=1), make_image(layers=1)
    push_image(client, "", NAME, kept, "kept", h)
    push_image(client, "", NAME, dropped, "dropped", h)
    assert client.delete(f"/v2/{NAME}/manifests/{dropped.digest}", headers=h).status_code == 202
    services = oci.services
    later = datetime.now(UTC) + gc.STAGED_GRACE + timedelta(minutes=1)
    report = gc.sweep(services.db, services.blobs, now=later)
    assert report.links == 2  # the dropped image's config and layer
    for digest in dropped.blobs():
        assert client.head(f"/v2/{NAME}/blobs/{digest}", headers=h).status_code == 404
    for digest in kept.blobs():
        assert client.head(f"/v2/{NAME}/blobs/{digest}", headers=h).status_code == 200
