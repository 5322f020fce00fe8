"""Retention of OCI images: untagged manifests, index children kept while a live index
needs them (the policy's veto), freed in the same run when the index goes, and GC of
the layers only those manifests held; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

from tests.registry.formats.oci.oci_helpers import (
    Image,
    make_image,
    make_index,
    push_blob,
    push_image,
    push_manifest,
    sha256,
)
from tests.registry.formats.oci.test_oci_analysis import image_of
from tests.registry.retention.conftest import RetentionApp
from tests.registry.supplychain.builders import tar

NAME = "images/app"


def _push_by_digest(app: RetentionApp, image: Image) -> str:
    for data in image.blobs().values():
        push_blob(app.client, "", NAME, data, app.headers())
    pushed = push_manifest(app.client, "", NAME, image.digest, image.manifest, app.headers())
    assert pushed.status_code == 201, pushed.text
    return image.digest


def _manifest_status(app: RetentionApp, digest: str) -> int:
    return app.client.get(f"/v2/{NAME}/manifests/{digest}", headers=app.headers()).status_code


def test_untagged_manifests_and_index_children(retention_app: RetentionApp) -> None:
    app = retention_app
    app.create_repo("images", "oci")
    tagged = make_image()
    push_image(app.client, "", NAME, tagged, "latest", app.headers())
    loose = make_image()
    _push_by_digest(app, loose)
    children = [make_image(), make_image()]
    for child in children:
        _push_by_digest(app, child)
    index = make_index(children)
    pushed = push_manifest(app.client, "", NAME, "v1.0.0", index, app.headers())
    assert pushed.status_code == 201, pushed.text
    # a second, untagged index whose children are untagged too
    orphans = [make_image()]
    _push_by_digest(app, orphans[0])
    loose_index = make_index(orphans)
    assert push_manifest(app.client, "", NAME, sha256(loose_index), loose_index, app.headers())

    app.set_rules({"rules": [{"name": "untagged", "untagged": True}], "recovery_days": 0})
    report = app.run()["report"]
    deleted = {e["version"] for e in report["deleted"]}
    assert deleted == {loose.digest, sha256(loose_index), orphans[0].digest}, report
    vetoed = {e["version"]: e["policy_reasons"] for e in report["vetoed"]}
    assert set(vetoed) == {child.digest for child in children}
    assert all("referenced by images/app@" in reasons[0] for reasons in vetoed.values())
    assert sorted(e["version"] for e in report["purged"]) == sorted(deleted)

    assert _manifest_status(app, loose.digest) == 404
    for digest in (tagged.digest, sha256(index), *(child.digest for child in children)):
        assert _manifest_status(app, digest) == 200

    gc = app.client.post("/api/v1/gc", params={"grace_minutes": 0}, headers=app.headers())
    assert gc.status_code == 200, gc.text
    reclaimed = set(gc.json()["digests"])
    assert set(loose.blobs()) | {loose.digest} <= reclaimed
    for image in (tagged, *children):
        for digest, data in image.blobs().items():
            got = app.client.get(f"/v2/{NAME}/blobs/{digest}", headers=app.headers())
            assert got.status_code == 200, (digest, got.text)
            assert "sha256:" + hashlib.sha256(got.content).hexdigest() == digest == sha256(data)


def test_sbom_referrers_are_accessories_not_versions(retention_app: RetentionApp) -> None:
    """keep_last counts images only; an image's SBOM referrer is never selected on its own."""
    app = retention_app
    app.create_repo("images", "oci")
    images = [
        image_of([tar({f"etc/release-{n}": str(n).encode()})]) for n in range(3)
    ]  # real layers: each push is analysed and gets an SBOM referrer
    for n, image in enumerate(images):
        push_image(app.client, "", NAME, image, f"v{n}", app.headers())
    referrers = {
        image.digest: app.client.get(
            f"/v2/{NAME}/referrers/{image.digest}", headers=app.headers()
        ).json()["manifests"]
        for image in images
    }
    assert all(len(found) == 1 for found in referrers.values()), referrers

    app.set_rules(
        {
            "rules": [
                {"name": "keep 2", "keep_last": 2, "older_than_days": 0},
                {"name": "untagged", "untagged": True},
            ],
            "recovery_days": 0,
        }
    )
    report = app.run()["report"]
    assert {e["version"] for e in report["deleted"]} == {images[0].digest}, report
    for image in images[1:]:
        assert _manifest_status(app, image.digest) == 200
        (sbom,) = referrers[image.digest]
        assert _manifest_status(app, sbom["digest"]) == 200
    # Its image gone, the first SBOM is an untagged version: the next run removes it.
    # (HEAD: a GET is a pull, and the policy keeps what was pulled in the last 30 days.)
    (orphan,) = referrers[images[0].digest]
    exists = f"/v2/{NAME}/manifests/{orphan['digest']}"
    assert app.client.head(exists, headers=app.headers()).status_code == 200
    again = app.run()["report"]
    assert {e["version"] for e in again["deleted"]} == {orphan["digest"]}, again["vetoed"]
    assert app.client.head(exists, headers=app.headers()).status_code == 404
