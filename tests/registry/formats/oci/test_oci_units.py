"""Pure pieces of the OCI adapter: names, digests, manifests, ranges, pagination, scopes."""

from __future__ import annotations

import json

import pytest

from registry.formats.oci import digests, names
from registry.formats.oci.blobs import byte_range
from registry.formats.oci.errors import CODES, OciError
from registry.formats.oci.manifest import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, parse
from registry.formats.oci.tags import paginate
from registry.formats.oci.token import requested_scopes

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("r/img/manifests/latest", ("manifest", "r", "img", "latest")),
        ("r/a/b/c/blobs/" + D, ("blob", "r", "a/b/c", D)),
        ("r/img/blobs/uploads/", ("uploads", "r", "img", "")),
        ("r/img/blobs/uploads/abc-DEF_1", ("uploads", "r", "img", "abc-DEF_1")),
        ("r/img/tags/list", ("tags", "r", "img", "")),
        ("r/img/referrers/" + D, ("referrers", "r", "img", D)),
        ("r/manifests/x/manifests/v1", ("manifest", "r", "manifests/x", "v1")),
    ],
)
def test_targets(path: str, expected: tuple[str, str, str, str]) -> None:
    target = names.parse_target(path)
    assert (target.endpoint, target.repository, target.image, target.arg) == expected


@pytest.mark.parametrize(
    "path", ["R/img/tags/list", "r/img//tags/list", "r/tags/list", "-r/img/tags/list"]
)
def test_invalid_names(path: str) -> None:
    with pytest.raises(OciError) as error:
        names.parse_target(path)
    assert error.value.code == "NAME_INVALID"


def test_unknown_endpoint_is_404() -> None:
    with pytest.raises(OciError) as error:
        names.parse_target("r/img/whatever")
    assert error.value.status == 404


@pytest.mark.parametrize(
    "value",
    [D, "sha512:" + "0" * 128],
)
def test_valid_digests(value: str) -> None:
    assert digests.parse(value) == value


@pytest.mark.parametrize(
    "value",
    ["sha256:" + "a" * 63, "sha256:" + "A" * 64, "md5:" + "a" * 32, "sha256", "", "sha256:zz"],
)
def test_invalid_digests(value: str) -> None:
    with pytest.raises(OciError) as error:
        digests.parse(value)
    assert error.value.code == "DIGEST_INVALID"


def test_compute_digest() -> None:
    assert digests.compute(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert digests.compute(b"", "sha512").startswith("sha512:cf83e1357eef")


def _manifest(**fields: object) -> bytes:
    base: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D, "size": 2},
        "layers": [],
    }
    base.update(fields)
    return json.dumps(base).encode()


def test_manifest_parts() -> None:
    layer = {"mediaType": "application/x", "digest": D, "size": 5}
    foreign = {**layer, "digest": "sha256:" + "b" * 64, "urls": ["https://example.com/l"]}
    parsed = parse(_manifest(layers=[layer, foreign], artifactType="application/x.sbom"), None)
    assert [d.digest for d in parsed.blobs()] == [
        D
    ]  # config and layer share a digest; foreign skipped
    assert parsed.referrer_type() == "application/x.sbom"
    assert parsed.content_size(100) == 100 + 2
    plain = parse(_manifest(), OCI_MANIFEST)
    assert plain.referrer_type() == "application/vnd.oci.image.config.v1+json"


def test_manifest_media_type_from_header_or_shape() -> None:
    body = json.loads(_manifest())
    del body["mediaType"]
    assert parse(json.dumps(body).encode(), DOCKER_MANIFEST).media_type == DOCKER_MANIFEST
    assert parse(json.dumps(body).encode(), "application/json").media_type == OCI_MANIFEST
    index = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert parse(index, None).media_type == OCI_INDEX


@pytest.mark.parametrize(
    "body",
    [
        _manifest(layers=[{"mediaType": "x", "digest": "sha256:nope", "size": 1}]),
        _manifest(layers=[{"mediaType": "x", "digest": D, "size": -1}]),
        _manifest(layers=[{"mediaType": "x", "digest": D, "size": True}]),
        _manifest(annotations={"a": 1}),
        _manifest(subject="not a descriptor"),
        _manifest(mediaType="application/vnd.docker.distribution.manifest.v1+prettyjws"),
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": {}}).encode(),
    ],
)
def test_bad_manifests(body: bytes) -> None:
    with pytest.raises(OciError) as error:
        parse(body, None)
    assert error.value.code == "MANIFEST_INVALID"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", (0, 0)),
        ("bytes=10-", (10, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=50-1000", (50, 99)),
    ],
)
def test_byte_ranges(header: str, expected: tuple[int, int]) -> None:
    assert byte_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=5-4", "bytes=-0", "bytes=-", "lines=1-2"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(OciError) as error:
        byte_range(header, 100)
    assert error.value.status == 416
    assert error.value.headers["Content-Range"] == "bytes */100"


def test_pagination() -> None:
    tags = ["A", "a", "b", "c"]
    assert paginate(tags, None, None) == (tags, False)
    assert paginate(tags, 2, None) == (["A", "a"], True)
    assert paginate(tags, 2, "a") == (["b", "c"], False)
    assert paginate(tags, 0, None) == ([], True)


def test_scope_parsing() -> None:
    scopes = requested_scopes(
        ["repository:r/img:pull,push repository:r/other:pull", "registry:catalog:*"]
    )
    assert scopes == [
        ("repository", "r/img", ["pull", "push"]),
        ("repository", "r/other", ["pull"]),
        ("registry", "catalog", ["*"]),
    ]


def test_error_table_is_the_specs() -> None:
    assert set(CODES) == {
        "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID",
        "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED", "TOOMANYREQUESTS",
    }  # fmt: skip
    with pytest.raises(ValueError):
        OciError("NOT_A_CODE", "x")
