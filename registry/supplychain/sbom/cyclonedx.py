"""Render an :class:`~registry.supplychain.sbom.inventory.Inventory` as CycloneDX 1.6.

The document is built with cyclonedx-python-lib's model and written by its
outputters (JSON and XML). ``metadata.component`` names the artifact (the
package it is, the container image with its ``pkg:oci`` purl, else the
file), carries its digest and where it lives in Arbiter; ``metadata.tools``
names Arbiter (and the library). Every package is a component identified by
its purl (also its ``bom-ref``); every file of an archive is a ``file``
component with its digests; ``dependencies`` is the graph the catalogers
found, with the artifact depending on the packages nothing else depends on.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.contrib.this.builders import this_component
from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.bom_ref import BomRef
from cyclonedx.model.component import Component, ComponentScope, ComponentType
from cyclonedx.model.dependency import Dependency
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from packageurl import PackageURL

from registry.supplychain.sbom.inventory import SHA1, SHA256, SHA512, Inventory, Package

SPEC = SchemaVersion.V1_6
SPEC_VERSION = "1.6"
JSON_MEDIA_TYPE = "application/vnd.cyclonedx+json"
XML_MEDIA_TYPE = "application/vnd.cyclonedx+xml"
TOOL_NAME = "arbiter"
TOOL_VERSION = "0.1.0"

_ALGORITHMS = {
    SHA1: HashAlgorithm.SHA_1,
    SHA256: HashAlgorithm.SHA_256,
    SHA512: HashAlgorithm.SHA_512,
}
_KINDS = {
    "library": ComponentType.LIBRARY,
    "application": ComponentType.APPLICATION,
    "framework": ComponentType.FRAMEWORK,
    "operating-system": ComponentType.OPERATING_SYSTEM,
}
_LICENSES = LicenseFactory()


@dataclass(frozen=True)
class Subject:
    """The artifact an SBOM describes, as Arbiter knows it."""

    repository: str
    name: str
    version: str
    filename: str
    digest: str  # sha256:<hex>
    format: str = ""
    container: bool = False  # an OCI image manifest (``version`` is its digest)


def build(inventory: Inventory, subject: Subject, *, timestamp: datetime) -> Bom:
    """The CycloneDX model of ``inventory``."""
    bom = Bom()
    bom.metadata.timestamp = timestamp
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name=TOOL_NAME, version=TOOL_VERSION)
    )
    bom.metadata.tools.components.add(this_component())
    root = _root(inventory, subject)
    bom.metadata.component = root
    by_ref: dict[str, Component] = {}
    for package in inventory.packages.values():
        by_ref[package.purl] = _package(package)
    files = [_file(entry.path, entry.size, entry.hashes) for entry in inventory.files]
    bom.components = [*by_ref.values(), *files]
    if inventory.files_omitted:
        bom.properties.add(
            Property(name="arbiter:files-omitted", value=str(inventory.files_omitted))
        )
    _dependencies(bom, inventory, root, by_ref)
    return bom


def to_json(bom: Bom) -> str:
    """The document as CycloneDX 1.6 JSON."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "incomplete graph" hints
        return str(make_outputter(bom, OutputFormat.JSON, SPEC).output_as_string())


def to_xml(bom: Bom) -> str:
    """The document as CycloneDX 1.6 XML."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return str(make_outputter(bom, OutputFormat.XML, SPEC).output_as_string())


def _root(inventory: Inventory, subject: Subject) -> Component:
    artifact_hash = {SHA256: subject.digest.removeprefix("sha256:")} if subject.digest else {}
    if inventory.root is not None:
        component = _package(inventory.root, extra_hashes=artifact_hash)
    elif subject.container:
        purl = PackageURL(
            type="oci", name=subject.name.rsplit("/", 1)[-1].lower(), version=subject.digest
        )
        component = Component(
            type=ComponentType.CONTAINER,
            name=subject.name,
            version=subject.digest,
            purl=purl,
            bom_ref=BomRef(purl.to_string()),
            hashes=_hashes(artifact_hash),
        )
    else:
        component = Component(
            type=ComponentType.FILE,
            name=subject.filename or subject.name,
            version=subject.version or None,
            bom_ref=BomRef(
                f"arbiter:{subject.repository}/{subject.name}/{subject.version}/{subject.filename}"
            ),
            hashes=_hashes(artifact_hash),
        )
    for name, value in (
        ("arbiter:repository", subject.repository),
        ("arbiter:format", subject.format),
        ("arbiter:name", subject.name),
        ("arbiter:version", subject.version),
        ("arbiter:file", subject.filename),
        ("arbiter:digest", subject.digest),
    ):
        if value:
            component.properties.add(Property(name=name, value=value))
    return component


def _package(package: Package, extra_hashes: dict[str, str] | None = None) -> Component:
    properties = [Property(name=k, value=v) for k, v in sorted(package.properties.items()) if v]
    if package.location:
        properties.append(Property(name="arbiter:location", value=package.location))
    if package.version_range:
        properties.append(Property(name="arbiter:version-range", value=package.version_range))
    return Component(
        type=_KINDS.get(package.kind, ComponentType.LIBRARY),
        name=package.name,
        group=package.group or None,
        version=package.version or None,
        purl=PackageURL.from_string(package.purl),
        bom_ref=BomRef(package.purl),
        licenses=[_LICENSES.make_from_string(package.licenses)] if package.licenses else [],
        hashes=_hashes({**package.hashes, **(extra_hashes or {})}),
        scope=ComponentScope.OPTIONAL if package.scope == "optional" else ComponentScope.REQUIRED,
        properties=properties,
    )


def _file(path: str, size: int, hashes: dict[str, str]) -> Component:
    return Component(
        type=ComponentType.FILE,
        name=path,
        bom_ref=BomRef(f"file:{path}"),
        hashes=_hashes(hashes),
        properties=[Property(name="arbiter:size", value=str(size))],
    )


def _hashes(hashes: dict[str, str]) -> list[HashType]:
    return [
        HashType(alg=_ALGORITHMS[alg], content=value)
        for alg, value in hashes.items()
        if alg in _ALGORITHMS
    ]


def _dependencies(
    bom: Bom, inventory: Inventory, root: Component, by_ref: dict[str, Component]
) -> None:
    """Register the graph, and make the library's own registration linear.

    ``Bom.validate`` (run by every outputter) registers each component by a
    linear search of the dependency set: quadratic, minutes for ten thousand
    files. The same registration, keyed by bom-ref, replaces it on this
    instance; the result is the same set of ``Dependency`` entries.
    """
    index: dict[str, Dependency] = {}

    def register(_bom: Bom, target: Any, depends_on: Iterable[Any] | None = None) -> None:
        ref = target.bom_ref
        existing = index.get(ref.value)
        targets = [Dependency(ref=d.bom_ref) for d in depends_on or ()]
        if existing is None:
            existing = Dependency(ref=ref, dependencies=targets)
            index[ref.value] = existing
            bom.dependencies.add(existing)
        elif targets:
            existing.dependencies.update(targets)
        for dependency in depends_on or ():
            register(_bom, dependency)

    bom.register_dependency = types.MethodType(register, bom)  # type: ignore[method-assign]
    depended: set[str] = set()
    for package in inventory.packages.values():
        targets = [by_ref[purl] for purl in package.depends_on if purl in by_ref]
        depended.update(t.bom_ref.value or "" for t in targets)
        bom.register_dependency(by_ref[package.purl], targets)
    if inventory.root is not None:
        direct = [by_ref[purl] for purl in inventory.root.depends_on if purl in by_ref]
    else:
        direct = [c for ref, c in by_ref.items() if ref not in depended]
    bom.register_dependency(root, direct)
