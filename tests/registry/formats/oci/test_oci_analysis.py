"""Image analysis on manifest push, through the ASGI app (SQLite): facts, SBOM, referrer.

Real layers built in the tests (:mod:`tests.registry.supplychain.builders`);
the real OCI clients drive the same road in ``test_oci_sbom_clients.py``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.formats.oci.analysis import EMPTY_DIGEST, SBOM_ARTIFACT_TYPE
from tests.fixtures_app import RegistryApp, make_registry_app
from tests.registry.formats.oci.oci_helpers import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Image,
    descriptor,
    error_code,
    make_image,
    make_index,
    push_blob,
    push_image,
    push_manifest,
    sha256,
)
from tests.registry.formats.oci.oci_tools import strict_policy
from tests.registry.supplychain.builders import image_layers, tar

NAME = "images/app"


def _app(tmp_path: Path, **settings: object) -> Iterator[RegistryApp]:
    registry = make_registry_app(tmp_path, f"sqlite:///{tmp_path / 'arbiter.db'}", **settings)
    with registry.client:
        registry.create_repo("images", "oci")
        yield registry


@pytest.fixture
def oci(tmp_path: Path) -> Iterator[RegistryApp]:
    yield from _app(tmp_path)


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[RegistryApp]:
    yield from _app(tmp_path, policy_dir=strict_policy(tmp_path / "rego"))


def image_of(layers: list[bytes], *, layer_type: str = OCI_LAYER) -> Image:
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": os.urandom(4).hex()})
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config.encode()),
        "layers": [descriptor(layer_type, layer) for layer in layers],
    }
    return Image(config.encode(), layers, json.dumps(manifest).encode())


def _events(app: RegistryApp, action: str) -> list[dict[str, Any]]:
    found = app.client.get("/api/v1/audit/events", params={"action": action}, headers=app.headers())
    assert found.status_code == 200, found.text
    return found.json()  # type: ignore[no-any-return]


def _content_input(app: RegistryApp) -> dict[str, Any]:
    pushes = [e for e in _events(app, "push") if e["details"].get("stage") == "content"]
    return pushes[-1]["details"]["input"]  # type: ignore[no-any-return]


def _referrers(app: RegistryApp, digest: str) -> list[dict[str, Any]]:
    listed = app.client.get(f"/v2/{NAME}/referrers/{digest}", headers=app.headers())
    assert listed.status_code == 200, listed.text
    return listed.json()["manifests"]  # type: ignore[no-any-return]


def test_an_image_push_is_analysed_and_its_sbom_attached(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    image = image_of(image_layers())
    push_image(client, "", NAME, image, "v1", h)

    artifact = _content_input(oci)["artifact"]
    assert artifact["scan"]["status"] == "complete", artifact["scan"]
    purls = artifact["sbom"]["purls"]
    for expected in (
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64",
        "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64",
        "pkg:pypi/jinja2@2.10",
        "pkg:npm/lodash@4.17.15",
        "pkg:npm/%40types/node@20.1.0",
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
    ):
        assert any(p.startswith(expected) for p in purls), (expected, purls)
    assert not any("removed" in p for p in purls), "the top layer whites it out"

    (analysed,) = _events(oci, "analyse")
    sbom_facts = analysed["details"]["sbom"]
    assert analysed["resource"]["version"] == image.digest
    assert sbom_facts["artifact_type"] == SBOM_ARTIFACT_TYPE

    for version in ("v1", image.digest):
        served = client.get(f"/api/v1/sbom/images/app/{version}", headers=h)
        assert served.status_code == 200, served.text
        document = served.json()
        assert document["metadata"]["component"]["type"] == "container"
        assert document["metadata"]["component"]["version"] == image.digest
        component_purls = {c.get("purl") for c in document["components"]}
        assert "pkg:pypi/jinja2@2.10" in component_purls

    (referrer,) = _referrers(oci, image.digest)
    assert referrer["artifactType"] == SBOM_ARTIFACT_TYPE
    assert referrer["digest"] == sbom_facts["referrer"]
    manifest = client.get(f"/v2/{NAME}/manifests/{referrer['digest']}", headers=h)
    assert manifest.status_code == 200 and manifest.headers["oci-subject"] == image.digest
    body = manifest.json()
    assert body["subject"]["digest"] == image.digest
    assert body["config"]["digest"] == EMPTY_DIGEST
    (layer,) = body["layers"]
    assert layer["digest"] == sbom_facts["digest"]
    blob = client.get(f"/v2/{NAME}/blobs/{layer['digest']}", headers=h)
    assert blob.status_code == 200 and blob.content == served.content
    assert client.get(f"/v2/{NAME}/blobs/{EMPTY_DIGEST}", headers=h).content == b"{}"

    lineage = client.get(f"/api/v1/lineage/images/app/{image.digest}", headers=h).json()
    analysed_step = next(s for s in lineage["steps"] if s["kind"] == "analysed")
    assert analysed_step["facts"]["sbom"]["referrer"] == referrer["digest"]


def test_a_re_tag_is_not_analysed_again(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    image = image_of(image_layers())
    push_image(client, "", NAME, image, "v1", h)
    again = push_manifest(client, "", NAME, "stable", image.manifest, h)
    assert again.status_code == 201, again.text
    assert len(_events(oci, "analyse")) == 1
    assert _content_input(oci)["artifact"]["scan"]["status"] == "complete"  # the stored facts
    assert len(_referrers(oci, image.digest)) == 1


def test_indexes_and_artifacts_are_not_analysed_as_images(oci: RegistryApp) -> None:
    client, h = oci.client, oci.headers()
    child = image_of(image_layers())
    push_image(client, "", NAME, child, "amd64", h)
    index = make_index([child])
    assert push_manifest(client, "", NAME, "multi", index, h).status_code == 201
    chart = make_image(
        1,
        config_type="application/vnd.cncf.helm.config.v1+json",
        layer_type="application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    )
    push_image(client, "", NAME, chart, "chart", h)
    artifact = make_image(1, artifact_type="application/vnd.example+json", layer_type=OCI_LAYER)
    push_image(client, "", NAME, artifact, "artifact", h)
    analysed = {e["resource"]["version"] for e in _events(oci, "analyse")}
    assert analysed == {child.digest}, "only the platform image; nor was its SBOM referrer"
    assert _referrers(oci, sha256(index)) == []
    missing = client.get(f"/api/v1/sbom/images/app/{chart.digest}", headers=h)
    assert missing.status_code == 404


def _gzip_tar(members: dict[str, bytes], links: dict[str, tuple[bytes, str]]) -> bytes:
    return tar(members, links=links)


def _bomb() -> bytes:
    """17 MiB of zeros in one member, gzip'd to a few KiB (over the 200:1 ratio bound)."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as zipped,
        tarfile.open(fileobj=zipped, mode="w|") as archive,
    ):
        info = tarfile.TarInfo("zeros")
        info.size = 17 * 1024 * 1024
        archive.addfile(info, io.BytesIO(bytes(info.size)))
    return buffer.getvalue()


HOSTILE = {
    "not gzip": (os.urandom(4096), "gzip"),
    "hard link outside": (
        _gzip_tar({"a": b"a"}, {"b": (tarfile.LNKTYPE, "../../etc/passwd")}),
        "outside",
    ),
    "device file": (_gzip_tar({"a": b"a"}, {"dev/sda": (tarfile.BLKTYPE, "")}), "device"),
    "bomb": (_bomb(), "bomb"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_layers_fail_the_scan_with_a_reason(oci: RegistryApp, kind: str) -> None:
    layer, word = HOSTILE[kind]
    image = image_of([layer])
    push_image(oci.client, "", NAME, image, "v1", oci.headers())  # the default policy allows
    scan = _content_input(oci)["artifact"]["scan"]
    assert scan["status"] == "failed" and word in scan["reason"].lower(), scan
    (analysed,) = _events(oci, "analyse")
    assert analysed["details"]["scan"]["status"] == "failed"
    assert _referrers(oci, image.digest) == []
    served = oci.client.get(f"/api/v1/sbom/images/app/{image.digest}", headers=oci.headers())
    assert served.status_code == 404 and "failed" in served.text


def test_a_policy_refuses_an_image_whose_scan_failed(strict: RegistryApp) -> None:
    client, h = strict.client, strict.headers()
    image = image_of([os.urandom(4096)])
    for data in image.blobs().values():
        push_blob(client, "", NAME, data, h)
    refused = push_manifest(client, "", NAME, "v1", image.manifest, h)
    assert refused.status_code == 403, refused.text
    assert error_code(refused) == "DENIED"
    assert "content was not analysed (failed)" in refused.json()["errors"][0]["message"]
    assert client.get(f"/v2/{NAME}/manifests/v1", headers=h).status_code == 404
    assert _events(strict, "analyse") == [], "nothing is recorded for refused content"
    assert _referrers(strict, image.digest) == []

    clean = image_of(image_layers())
    push_image(client, "", NAME, clean, "v2", h)  # no OSV data imported: no findings
