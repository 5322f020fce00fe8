"""The OCI adapter through the ASGI app, on SQLite and PostgreSQL: flows, bad input, governance."""

from __future__ import annotations

import json
import os

import pytest

from audit import EventFilter, build_lineage, query_events
from tests.fixtures_app import RegistryApp
from tests.registry.formats.oci.oci_helpers import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
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

NAME = "images/app"


@pytest.fixture
def oci(registry_app: RegistryApp) -> RegistryApp:
    registry_app.create_repo("images", "oci")
    return registry_app


def _events(app: RegistryApp, **where: str) -> list[dict]:
    with app.services.db.reader() as session:
        events = query_events(session.connection(), EventFilter(**where))
        return [event.to_dict() for event in events]


def test_push_pull_round_trip_with_headers(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    image = make_image(layers=3)
    pushed = push_image(client, "", NAME, image, "v1", h)
    assert pushed.headers["docker-content-digest"] == image.digest
    assert pushed.headers["location"] == f"/v2/{NAME}/manifests/{image.digest}"

    for reference in ("v1", image.digest):
        got = client.get(f"/v2/{NAME}/manifests/{reference}", headers=h)
        assert got.status_code == 200
        assert got.content == image.manifest
        assert got.headers["content-type"] == OCI_MANIFEST
        assert got.headers["docker-content-digest"] == image.digest
        head = client.head(f"/v2/{NAME}/manifests/{reference}", headers=h)
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == str(len(image.manifest))
    for digest, data in image.blobs().items():
        blob = client.get(f"/v2/{NAME}/blobs/{digest}", headers=h)
        assert blob.content == data
        assert blob.headers["docker-content-digest"] == digest


@pytest.mark.parametrize("media_type", [DOCKER_LIST, OCI_INDEX])
def test_index_and_docker_media_types(oci: RegistryApp, media_type: str) -> None:
    client, h = oci.client, oci.headers()
    child_type = DOCKER_MANIFEST if media_type == DOCKER_LIST else OCI_MANIFEST
    children = [make_image(media_type=child_type) for _ in range(2)]
    for child in children:
        push_image(client, "", NAME, child, child.digest, h)
    index = make_index(children, media_type)
    assert push_manifest(client, "", NAME, "multi", index, h).status_code == 201
    got = client.get(f"/v2/{NAME}/manifests/multi", headers=h)
    assert got.headers["content-type"] == media_type
    assert got.content == index


def test_missing_blob_is_manifest_blob_unknown_and_stores_nothing(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    image = make_image()
    push_blob(client, "", NAME, image.config, h)  # the layers never arrive
    response = push_manifest(client, "", NAME, "v1", image.manifest, h)
    assert response.status_code == 400
    assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"
    assert client.get(f"/v2/{NAME}/manifests/v1", headers=h).status_code == 404
    assert client.get(f"/v2/{NAME}/manifests/{image.digest}", headers=h).status_code == 404
    assert not [e for e in _events(oci, action="push") if e["details"].get("stage") == "content"]


def test_index_with_unknown_child_is_refused(oci: RegistryApp) -> None:
    index = make_index([make_image()])
    response = push_manifest(oci.client, "", NAME, "multi", index, oci.headers())
    assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"


def test_manifest_over_4_mib_is_413(oci: RegistryApp) -> None:
    big = json.dumps({"schemaVersion": 2, "pad": "x" * (4 * 1024 * 1024)}).encode()
    response = push_manifest(oci.client, "", NAME, "big", big, oci.headers())
    assert response.status_code == 413
    assert error_code(response) == "MANIFEST_INVALID"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", OCI_MANIFEST),
        (b"[]", OCI_MANIFEST),
        (json.dumps({"schemaVersion": 1, "name": "x"}).encode(), OCI_MANIFEST),
        (json.dumps({"schemaVersion": 2, "mediaType": "text/plain"}).encode(), "text/plain"),
        (
            json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode(),
            OCI_MANIFEST,
        ),
    ],
    ids=["malformed", "not-an-object", "schema1", "wrong-media-type", "no-config"],
)
def test_bad_manifests_are_manifest_invalid(
    oci: RegistryApp, body: bytes, content_type: str
) -> None:
    response = oci.client.put(
        f"/v2/{NAME}/manifests/v1",
        content=body,
        headers={**oci.headers(), "Content-Type": content_type},
    )
    assert response.status_code == 400, response.text
    assert error_code(response) == "MANIFEST_INVALID"


def test_content_type_contradicting_the_body_is_manifest_invalid(oci: RegistryApp) -> None:
    image = make_image()
    for data in image.blobs().values():
        push_blob(oci.client, "", NAME, data, oci.headers())
    response = oci.client.put(
        f"/v2/{NAME}/manifests/v1",
        content=image.manifest,
        headers={**oci.headers(), "Content-Type": OCI_INDEX},
    )
    assert error_code(response) == "MANIFEST_INVALID"


@pytest.mark.parametrize(
    "digest", ["sha256:baddigest", "md5:0123456789abcdef0123456789abcdef", "sha256:" + "A" * 64]
)
def test_invalid_digests_are_digest_invalid(oci: RegistryApp, digest: str) -> None:
    client, h = oci.client, oci.headers()
    for response in (
        client.get(f"/v2/{NAME}/blobs/{digest}", headers=h),
        client.post(f"/v2/{NAME}/blobs/uploads/?digest={digest}", content=b"x", headers=h),
        client.get(f"/v2/{NAME}/manifests/{digest}", headers=h),
    ):
        assert response.status_code == 400, response.text
        assert error_code(response) == "DIGEST_INVALID"


def test_wrong_digest_on_upload_stores_nothing(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    wrong = sha256(b"something else")
    response = client.post(f"/v2/{NAME}/blobs/uploads/?digest={wrong}", content=b"data", headers=h)
    assert error_code(response) == "DIGEST_INVALID"
    assert client.head(f"/v2/{NAME}/blobs/{wrong}", headers=h).status_code == 404
    assert client.head(f"/v2/{NAME}/blobs/{sha256(b'data')}", headers=h).status_code == 404


def test_chunked_upload_out_of_order_is_416_and_resumes(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    data = os.urandom(3000)
    location = client.post(f"/v2/{NAME}/blobs/uploads/", headers=h).headers["location"]
    first = client.patch(location, content=data[:1000], headers={**h, "Content-Range": "0-999"})
    assert first.status_code == 202
    assert first.headers["range"] == "0-999"
    skipped = client.patch(
        location, content=data[2000:], headers={**h, "Content-Range": "2000-2999"}
    )
    assert skipped.status_code == 416
    assert skipped.headers["range"] == "0-999"
    status = client.get(location, headers=h)
    assert status.status_code == 204
    assert status.headers["range"] == "0-999"
    rest = client.patch(location, content=data[1000:], headers={**h, "Content-Range": "1000-2999"})
    assert rest.status_code == 202
    done = client.put(f"{location}?digest={sha256(data)}", headers=h)
    assert done.status_code == 201, done.text
    assert client.get(f"/v2/{NAME}/blobs/{sha256(data)}", headers=h).content == data


def test_streamed_upload_and_cancel(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    data = os.urandom(5000)
    location = client.post(f"/v2/{NAME}/blobs/uploads/", headers=h).headers["location"]
    assert client.patch(location, content=data, headers=h).status_code == 202
    assert client.put(f"{location}?digest={sha256(data)}", headers=h).status_code == 201

    location = client.post(f"/v2/{NAME}/blobs/uploads/", headers=h).headers["location"]
    assert client.patch(location, content=b"abc", headers=h).status_code == 202
    assert client.delete(location, headers=h).status_code == 204
    gone = client.get(location, headers=h)
    assert gone.status_code == 404
    assert error_code(gone) == "BLOB_UPLOAD_UNKNOWN"


def _user(app: RegistryApp, name: str, role: str | None, repository: str | None = None) -> str:
    client, h = app.client, app.headers()
    assert client.post("/api/v1/users", json={"name": name}, headers=h).status_code == 201
    created = client.post(f"/api/v1/users/{name}/tokens", json={}, headers=h)
    if role is not None:
        binding = {"role": role, "user": name, "repository": repository}
        assert client.post("/api/v1/role-bindings", json=binding, headers=h).status_code == 201
    return str(created.json()["token"])


def test_upload_sessions_are_bound_to_subject_and_repository(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    other = oci.headers(_user(oci, "mallory", "writer", "images"))
    location = client.post(f"/v2/{NAME}/blobs/uploads/", headers=h).headers["location"]
    session_id = location.rsplit("/", 1)[1]
    assert len(session_id) >= 40
    stolen = client.patch(location, content=b"evil", headers=other)
    assert stolen.status_code == 404
    assert error_code(stolen) == "BLOB_UPLOAD_UNKNOWN"
    elsewhere = client.get(f"/v2/images/other/blobs/uploads/{session_id}", headers=h)
    assert elsewhere.status_code == 404
    assert client.get(location, headers=h).status_code == 204


def test_denied_pull_says_why(oci: RegistryApp) -> None:
    push_image(oci.client, "", NAME, make_image(), "v1", oci.headers())
    stranger = oci.headers(_user(oci, "stranger", None))
    response = oci.client.get(f"/v2/{NAME}/manifests/v1", headers=stranger)
    assert response.status_code == 403
    body = response.json()["errors"][0]
    assert body["code"] == "DENIED"
    assert "holds no role that grants pull" in body["message"]
    assert body["detail"]["reasons"]
    denied = _events(oci, action="pull", outcome="denied")
    assert denied and denied[-1]["actor"]["id"] == "stranger"


def test_anonymous_is_challenged_with_the_scope(oci: RegistryApp) -> None:
    response = oci.client.get(f"/v2/{NAME}/manifests/v1")
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="http://testserver/v2/token",service="arbiter"')
    assert f'scope="repository:{NAME}:pull"' in challenge
    assert error_code(response) == "UNAUTHORIZED"


def test_immutable_tag_cannot_move(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    first, second = make_image(), make_image()
    push_image(client, "", NAME, first, "1.0.0", h)
    for data in second.blobs().values():
        push_blob(client, "", NAME, data, h)
    moved = push_manifest(client, "", NAME, "1.0.0", second.manifest, h)
    assert moved.status_code == 403
    assert "immutable" in moved.json()["errors"][0]["message"]
    assert client.get(f"/v2/{NAME}/manifests/1.0.0", headers=h).content == first.manifest


def test_tags_retags_and_mounts_are_lineage(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    first, second = make_image(), make_image()
    push_image(client, "", NAME, first, "latest", h)
    push_image(client, "", NAME, second, "latest", h)
    tags = _events(oci, action="tag")
    assert [e["details"]["tag"] for e in tags] == ["latest", "latest"]
    assert tags[1]["details"]["previous_digest"] == first.digest
    with oci.services.db.reader() as session:
        lineage = build_lineage(session.connection(), "images", "app", second.digest)
    kinds = [step.kind for step in lineage.steps]
    assert kinds == ["pushed", "analysed", "retagged"]  # random layers: a failed scan
    pushed = lineage.steps[0].facts
    assert pushed["digest"] == second.digest
    # layers are linked in the push event
    push_event = [e for e in _events(oci, action="push", version=second.digest)][-1]
    assert push_event["details"]["layers"] == [sha256(layer) for layer in second.layers]

    oci.create_repo("mirror", "oci")
    layer = sha256(first.layers[0])
    mounted = client.post(f"/v2/mirror/app/blobs/uploads/?mount={layer}&from={NAME}", headers=h)
    assert mounted.status_code == 201, mounted.text
    assert mounted.headers["location"] == f"/v2/mirror/app/blobs/{layer}"
    mount_events = [e for e in _events(oci, action="push") if e["details"].get("mount")]
    assert mount_events[-1]["details"]["from"] == NAME
    assert client.get(f"/v2/mirror/app/blobs/{layer}", headers=h).content == first.layers[0]


def test_copy_to_another_repository_records_its_source(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    image = make_image()
    push_image(client, "", NAME, image, "v1", h)
    oci.create_repo("prod", "oci")
    push_image(client, "", "prod/app", image, "v1", h)
    with oci.services.db.reader() as session:
        lineage = build_lineage(session.connection(), "prod", "app", image.digest)
    assert [r.to_json()["kind"] for r in lineage.relations] == ["promoted-from"]
    assert lineage.relations[0].target == f"images/app@{image.digest}"


def test_mount_without_access_falls_back_to_upload(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    image = make_image(layers=1)
    push_image(client, "", NAME, image, "v1", h)
    oci.create_repo("team", "oci")
    writer = oci.headers(_user(oci, "writer", "writer", "team"))
    layer = sha256(image.layers[0])
    response = client.post(f"/v2/team/app/blobs/uploads/?mount={layer}&from={NAME}", headers=writer)
    assert response.status_code == 202
    assert "/v2/team/app/blobs/uploads/" in response.headers["location"]


def test_tag_list_pagination_and_link(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    image = make_image(layers=1)
    push_image(client, "", NAME, image, "a", h)
    for tag in ("c", "b", "D", "e"):
        assert push_manifest(client, "", NAME, tag, image.manifest, h).status_code == 201
    everything = client.get(f"/v2/{NAME}/tags/list", headers=h).json()
    assert everything == {"name": NAME, "tags": ["D", "a", "b", "c", "e"]}
    page = client.get(f"/v2/{NAME}/tags/list?n=2", headers=h)
    assert page.json()["tags"] == ["D", "a"]
    assert page.headers["link"] == f'</v2/{NAME}/tags/list?n=2&last=a>; rel="next"'
    rest = client.get(f"/v2/{NAME}/tags/list?n=2&last=a", headers=h)
    assert rest.json()["tags"] == ["b", "c"]
    last = client.get(f"/v2/{NAME}/tags/list?n=2&last=c", headers=h)
    assert last.json()["tags"] == ["e"]
    assert "link" not in last.headers
    missing = client.get("/v2/images/nothing/tags/list", headers=h)
    assert error_code(missing) == "NAME_UNKNOWN"


def test_referrers_filter_and_tag_schema_fallback(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    subject = make_image(layers=1)
    push_image(client, "", NAME, subject, "v1", h)
    about = descriptor(OCI_MANIFEST, subject.manifest)
    sbom = make_image(
        layers=1,
        subject=about,
        artifact_type="application/spdx+json",
        config_type="application/vnd.oci.empty.v1+json",
        annotations={"org.example": "sbom"},
    )
    sig = make_image(layers=1, subject=about, artifact_type="application/vnd.example.sig")
    for artifact in (sbom, sig):
        pushed = push_image(client, "", NAME, artifact, artifact.digest, h)
        assert pushed.headers["oci-subject"] == subject.digest
    listed = client.get(f"/v2/{NAME}/referrers/{subject.digest}", headers=h)
    assert listed.headers["content-type"] == OCI_INDEX
    entries = {m["digest"]: m for m in listed.json()["manifests"]}
    assert set(entries) == {sbom.digest, sig.digest}
    assert entries[sbom.digest]["artifactType"] == "application/spdx+json"
    assert entries[sbom.digest]["annotations"] == {"org.example": "sbom"}
    filtered = client.get(
        f"/v2/{NAME}/referrers/{subject.digest}",
        params={"artifactType": "application/spdx+json"},
        headers=h,
    )
    assert filtered.headers["oci-filters-applied"] == "artifactType"
    assert [m["digest"] for m in filtered.json()["manifests"]] == [sbom.digest]

    # an older client attached a signature through the tag schema only
    legacy = make_image(layers=1, artifact_type="application/vnd.legacy.sig")
    push_image(client, "", NAME, legacy, legacy.digest, h)
    fallback = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    **descriptor(OCI_MANIFEST, legacy.manifest),
                    "artifactType": "application/x.legacy",
                }
            ],
        }
    ).encode()
    tag = subject.digest.replace(":", "-")
    assert push_manifest(client, "", NAME, tag, fallback, h).status_code == 201
    merged = client.get(f"/v2/{NAME}/referrers/{subject.digest}", headers=h).json()
    assert legacy.digest in {m["digest"] for m in merged["manifests"]}
    empty = client.get(f"/v2/{NAME}/referrers/{sha256(b'nothing')}", headers=h)
    assert empty.status_code == 200 and empty.json()["manifests"] == []


def test_delete_tag_manifest_and_blob(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    image = make_image(layers=1)
    push_image(client, "", NAME, image, "v1", h)
    assert client.delete(f"/v2/{NAME}/manifests/v1", headers=h).status_code == 202
    assert client.head(f"/v2/{NAME}/manifests/v1", headers=h).status_code == 404
    assert client.head(f"/v2/{NAME}/manifests/{image.digest}", headers=h).status_code == 200
    assert client.delete(f"/v2/{NAME}/manifests/{image.digest}", headers=h).status_code == 202
    assert client.head(f"/v2/{NAME}/manifests/{image.digest}", headers=h).status_code == 404
    layer = sha256(image.layers[0])
    assert client.delete(f"/v2/{NAME}/blobs/{layer}", headers=h).status_code == 202
    assert client.head(f"/v2/{NAME}/blobs/{layer}", headers=h).status_code == 404
    gone = client.delete(f"/v2/{NAME}/blobs/{layer}", headers=h)
    assert error_code(gone) == "BLOB_UNKNOWN"


def test_blob_ranges(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    data = os.urandom(2048)
    push_blob(client, "", NAME, data, h)
    url = f"/v2/{NAME}/blobs/{sha256(data)}"
    part = client.get(url, headers={**h, "Range": "bytes=500-1499"})
    assert part.status_code == 206
    assert part.content == data[500:1500]
    assert part.headers["content-range"] == "bytes 500-1499/2048"
    assert client.get(url, headers={**h, "Range": "bytes=-100"}).content == data[-100:]
    for bad in ("bytes=500-0", "bytes=5000-6000", "items=1-2"):
        refused = client.get(url, headers={**h, "Range": bad})
        assert refused.status_code == 416
        assert refused.headers["content-range"] == "bytes */2048"


def test_unknown_repository_and_wrong_format(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    assert error_code(client.get("/v2/nope/app/tags/list", headers=h)) == "NAME_UNKNOWN"
    oci.create_repo("files", "generic")
    assert error_code(client.get("/v2/files/app/tags/list", headers=h)) == "NAME_UNKNOWN"
    assert error_code(client.get("/v2/Bad_Name/x/tags/list", headers=h)) == "NAME_INVALID"
    assert error_code(client.get("/v2/images/manifests/v1", headers=h)) == "NAME_INVALID"


def test_catalog_lists_what_the_subject_may_pull(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    push_image(client, "", NAME, make_image(layers=1), "v1", h)
    oci.create_repo("secret", "oci")
    push_image(client, "", "secret/x", make_image(layers=1), "v1", h)
    assert client.get("/v2/_catalog", headers=h).json() == {"repositories": [NAME, "secret/x"]}
    reader = oci.headers(_user(oci, "reader", "reader", "images"))
    assert client.get("/v2/_catalog", headers=reader).json() == {"repositories": [NAME]}
    page = client.get("/v2/_catalog?n=1", headers=h)
    assert page.json() == {"repositories": [NAME]}
    assert page.headers["link"] == f'</v2/_catalog?n=1&last={NAME.replace("/", "%2F")}>; rel="next"'
