"""SBOM generation: what each cataloger finds, and the CycloneDX 1.6 documents (JSON and XML)."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime

import pytest

from registry.supplychain.errors import SbomInvalid
from registry.supplychain.limits import ScanLimits
from registry.supplychain.sbom import cyclonedx, validate
from registry.supplychain.sbom.analyse import analyse_file
from registry.supplychain.sbom.inventory import Inventory
from tests.registry.supplychain.builders import jar, npm_package, rootfs, tar, wheel

SUBJECT = cyclonedx.Subject(
    "files", "thing", "1.0", "thing.tar.gz", "sha256:" + "ab" * 32, "generic"
)


def _inventory(data: bytes, filename: str, limits: ScanLimits) -> Inventory:
    return analyse_file(io.BytesIO(data), filename=filename, size=len(data), limits=limits)


def _document(inventory: Inventory, subject: cyclonedx.Subject = SUBJECT) -> dict:  # type: ignore[type-arg]
    bom = cyclonedx.build(inventory, subject, timestamp=datetime.now(UTC))
    document = json.loads(cyclonedx.to_json(bom))
    assert validate.validate_json(document, strict=True) == "1.6"
    assert validate.validate_xml(cyclonedx.to_xml(bom).encode()) == "1.6"
    return document


def test_wheel_is_the_root_with_its_declared_dependencies(limits: ScanLimits) -> None:
    data = wheel(
        "demo",
        "1.0",
        license="Apache-2.0",
        requires=("requests>=2", "idna==3.4", "pysocks; extra == 'socks'"),
    )
    inventory = _inventory(data, "demo-1.0-py3-none-any.whl", limits)
    assert inventory.root is not None and inventory.root.purl == "pkg:pypi/demo@1.0"
    assert set(inventory.packages) == {"pkg:pypi/requests", "pkg:pypi/idna@3.4", "pkg:pypi/pysocks"}
    assert inventory.packages["pkg:pypi/pysocks"].scope == "optional"
    document = _document(inventory)
    root = document["metadata"]["component"]
    assert root["purl"] == "pkg:pypi/demo@1.0"
    assert root["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert {"alg": "SHA-256", "content": "ab" * 32} in root["hashes"]
    properties = {p["name"]: p["value"] for p in root["properties"]}
    assert properties["arbiter:digest"] == SUBJECT.digest
    tools = [t["name"] for t in document["metadata"]["tools"]["components"]]
    assert "arbiter" in tools
    graph = {d["ref"]: set(d.get("dependsOn", [])) for d in document["dependencies"]}
    assert graph["pkg:pypi/demo@1.0"] == set(inventory.packages)


def test_sdist_root(limits: ScanLimits) -> None:
    pkg_info = (
        b"Metadata-Version: 2.1\nName: Demo_Pkg\nVersion: 2.0\nLicense: MIT\nRequires-Dist: six\n"
    )
    data = tar(
        {"demo_pkg-2.0/PKG-INFO": pkg_info, "demo_pkg-2.0/demo_pkg.egg-info/PKG-INFO": pkg_info}
    )
    inventory = _inventory(data, "demo_pkg-2.0.tar.gz", limits)
    assert inventory.root is not None and inventory.root.purl == "pkg:pypi/demo-pkg@2.0"
    assert list(inventory.packages) == ["pkg:pypi/six"]


def test_npm_tarball_with_a_lock_file(limits: ScanLimits) -> None:
    lock = {
        "name": "app",
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "app", "version": "1.0.0", "dependencies": {"lodash": "^4.17.0"}},
            "node_modules/lodash": {
                "version": "4.17.15",
                "integrity": "sha512-" + "A" * 86 + "==",
                "license": "MIT",
            },
            "node_modules/left-pad": {"version": "1.3.0", "dev": True},
        },
    }
    data = tar(
        {
            "package/package.json": npm_package("app", "1.0.0", dependencies={"lodash": "^4.17.0"}),
            "package/package-lock.json": json.dumps(lock).encode(),
        }
    )
    inventory = _inventory(data, "app-1.0.0.tgz", limits)
    assert inventory.root is not None and inventory.root.purl == "pkg:npm/app@1.0.0"
    assert list(inventory.packages) == [
        "pkg:npm/lodash@4.17.15"
    ]  # dev dependencies are not installed
    assert inventory.root.depends_on == ["pkg:npm/lodash@4.17.15"]
    assert "SHA-512" in inventory.packages["pkg:npm/lodash@4.17.15"].hashes
    _document(inventory)


def test_npm_tarball_without_a_lock_declares_ranges(limits: ScanLimits) -> None:
    data = tar(
        {
            "package/package.json": npm_package(
                "@acme/app", "2.0.0", dependencies={"@types/node": "^20"}
            )
        }
    )
    inventory = _inventory(data, "app.tgz", limits)
    assert inventory.root is not None and inventory.root.purl == "pkg:npm/%40acme/app@2.0.0"
    declared = inventory.packages["pkg:npm/%40types/node"]
    assert declared.version == "" and declared.version_range == "^20"


@pytest.mark.parametrize("distro", ["debian", "alpine"])
def test_root_file_system(limits: ScanLimits, distro: str) -> None:
    inventory = _inventory(rootfs(distro), "image-layer.tar.gz", limits)
    purls = set(inventory.packages)
    assert "pkg:pypi/jinja2@2.10" in purls
    assert "pkg:pypi/markupsafe@2.1.3" in purls
    assert "pkg:npm/lodash@4.17.15" in purls
    assert "pkg:npm/%40types/node@20.1.0" in purls
    assert "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1" in purls
    if distro == "debian":
        assert (
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
            in purls
        )
        assert not any("removed-thing" in p for p in purls)
        libc = next(p for p in inventory.packages.values() if p.name == "libc6")
        assert libc.depends_on == [next(p for p in purls if "libgcc-s1" in p)]
    else:
        busybox = next(p for p in inventory.packages.values() if p.name == "busybox")
        musl = next(p for p in inventory.packages.values() if p.name == "musl")
        assert busybox.purl == "pkg:apk/alpine/busybox@1.36.1-r5?arch=x86_64&distro=alpine-3.19.1"
        assert busybox.depends_on == [musl.purl]  # through so:libc.musl-x86_64.so.1
        assert busybox.licenses == "GPL-2.0-only"
        assert "SHA-1" in musl.hashes
    jinja = inventory.packages["pkg:pypi/jinja2@2.10"]
    assert jinja.depends_on == ["pkg:pypi/markupsafe@2.1.3"]
    log4j = inventory.packages["pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"]
    assert "SHA-1" in log4j.hashes  # the nested JAR's own digests
    document = _document(inventory)
    files = [c for c in document["components"] if c["type"] == "file"]
    assert {f["name"] for f in files} >= {"etc/os-release", "opt/app/lib/log4j-core-2.14.1.jar"}
    assert all(any(h["alg"] == "SHA-256" for h in f["hashes"]) for f in files)


def test_a_jar_pushed_as_itself_is_the_root(limits: ScanLimits) -> None:
    data = jar(
        "com.example",
        "app",
        "3.1.0",
        nested={
            "BOOT-INF/lib/log4j-core-2.14.1.jar": jar(
                "org.apache.logging.log4j", "log4j-core", "2.14.1"
            )
        },
    )
    inventory = _inventory(data, "app-3.1.0.jar", limits)
    assert inventory.root is not None and inventory.root.purl == "pkg:maven/com.example/app@3.1.0"
    assert "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1" in inventory.packages


def test_files_beyond_the_component_limit_are_counted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = tar({f"f{i}.txt": b"x" for i in range(30)})
    inventory = _inventory(
        data, "many.tar.gz", ScanLimits(max_file_components=10, temp_dir=tmp_path)
    )
    assert len(inventory.files) == 10 and inventory.files_omitted == 20
    document = _document(inventory)
    assert {"name": "arbiter:files-omitted", "value": "20"} in document["properties"]


def test_symlinks_are_not_followed_or_listed(limits: ScanLimits) -> None:
    data = tar({"a.txt": b"a"}, links={"b.txt": (tarfile.SYMTYPE, "a.txt")})
    inventory = _inventory(data, "links.tar.gz", limits)
    assert [f.path for f in inventory.files] == ["a.txt"]


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"bomFormat": "SPDX"}, "not a CycloneDX document"),
        ({"bomFormat": "CycloneDX", "specVersion": "0.9"}, "specVersion"),
        (
            {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"name": "x"}]},
            "'type' is a required property",
        ),
        (
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.6",
                "components": [
                    {
                        "type": "library",
                        "name": "x",
                        "licenses": [{"license": {"id": "Not-A-License"}}],
                    }
                ],
            },
            "components/0/licenses",
        ),
    ],
)
def test_invalid_documents_say_why(document: dict, words: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SbomInvalid) as raised:
        validate.parse_json(json.dumps(document).encode())
    assert words in raised.value.message


def test_invalid_xml_says_why() -> None:
    bad = (
        b'<?xml version="1.0"?><bom xmlns="http://cyclonedx.org/schema/bom/1.6" version="1">'
        b'<components><component type="nonsense"><name>x</name></component></components></bom>'
    )
    with pytest.raises(SbomInvalid) as raised:
        validate.validate_xml(bad)
    assert "XML schema" in raised.value.message
    with pytest.raises(SbomInvalid):
        validate.validate_xml(b"<html/>")
