"""SBOM documents of a version: reading them for the API, and the producer's upload.

The API stays thin: it asks here for a version's SBOM in the representation
the client accepts (JSON as stored, XML rendered by cyclonedx-python-lib
from it) and for the rows a producer's upload needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cyclonedx.model.bom import Bom
from defusedxml import ElementTree
from sqlmodel import Session

from registry.blobs import BlobStore
from registry.errors import NotFound
from registry.supplychain import storage
from registry.supplychain.models import COMPLETE, GENERATED, PRODUCER, SbomDocument
from registry.supplychain.sbom import cyclonedx, licenses, validate
from registry.supplychain.sbom.merge import merge
from registry.supplychain.summary import SbomSummary

JSON = "json"
XML = "xml"


@dataclass(frozen=True)
class Served:
    body: bytes
    media_type: str


def select_documents(
    session: Session, version: int, *, source: str, file: str | None
) -> list[SbomDocument]:
    """The stored documents of ``source`` (and ``file``), or NotFound saying why."""
    found = [d for d in storage.documents(session, version) if d.source == source]
    if file is not None:
        found = [d for d in found if d.file == file]
    usable = [d for d in found if d.blob_digest]
    if usable:
        return usable
    failed = [d for d in found if d.status != COMPLETE]
    if failed:
        raise NotFound(f"no SBOM: the analysis of {failed[0].file} failed: {failed[0].reason}")
    what = "an SBOM from its producer" if source == PRODUCER else "an SBOM"
    raise NotFound(f"the version has no {what}" + (f" for file {file!r}" if file else ""))


def render(
    blobs: BlobStore,
    chosen: list[SbomDocument],
    *,
    want: str,
    repository: str,
    name: str,
    version: str,
) -> Served:
    """The chosen documents as one CycloneDX document in ``want`` (json or xml)."""
    if len(chosen) == 1 and _format_of(chosen[0]) == want:
        return Served(_read(blobs, chosen[0]), chosen[0].media_type)
    documents = [_as_json(blobs, d) for d in chosen]
    merged = merge(documents, repository=repository, name=name, version=version)
    if want == JSON:
        return Served(json.dumps(merged).encode(), cyclonedx.JSON_MEDIA_TYPE)
    bom = Bom.from_json(merged)  # type: ignore[attr-defined]
    return Served(cyclonedx.to_xml(bom).encode(), cyclonedx.XML_MEDIA_TYPE)


def _as_json(blobs: BlobStore, document: SbomDocument) -> dict[str, Any]:
    data = _read(blobs, document)
    if _format_of(document) == JSON:
        return json.loads(data)  # type: ignore[no-any-return]
    bom = Bom.from_xml(_xml_root(data))  # type: ignore[attr-defined]
    return json.loads(cyclonedx.to_json(bom))  # type: ignore[no-any-return]


def parse_upload(data: bytes, content_type: str) -> tuple[str, str, SbomSummary]:
    """Validate a producer's SBOM: ``(format, spec version, summary)``; raises SbomInvalid."""
    is_xml = "xml" in content_type or data.lstrip()[:1] == b"<"
    if is_xml:
        version = validate.validate_xml(data)
        bom = Bom.from_xml(_xml_root(data))  # type: ignore[attr-defined]
        document = json.loads(cyclonedx.to_json(bom))
        return XML, version, summarise(document)
    document = validate.parse_json(data)
    return JSON, str(document["specVersion"]), summarise(document)


def summarise(document: dict[str, Any]) -> SbomSummary:
    """Licenses (SPDX ids) and purls a CycloneDX document states."""
    components = list(document.get("components", []))
    root = document.get("metadata", {}).get("component")
    if isinstance(root, dict):
        components.append(root)
    purls: set[str] = set()
    ids: set[str] = set()
    pending = components
    while pending:
        component = pending.pop()
        if not isinstance(component, dict):
            continue
        if isinstance(component.get("purl"), str):
            purls.add(component["purl"])
        for choice in component.get("licenses", []) or []:
            if not isinstance(choice, dict):
                continue
            if "expression" in choice:
                ids.update(licenses.ids(str(choice["expression"])))
            elif isinstance(choice.get("license"), dict):
                found = choice["license"].get("id")
                if isinstance(found, str):
                    ids.update(licenses.ids(found))
        pending.extend(component.get("components", []) or [])
    return SbomSummary(
        licenses=tuple(sorted(ids)),
        purls=tuple(sorted(purls)),
        components=len(purls),
    )


def _format_of(document: SbomDocument) -> str:
    return XML if document.media_type.endswith("xml") else JSON


def _read(blobs: BlobStore, document: SbomDocument) -> bytes:
    if document.blob_digest is None:
        raise NotFound(f"the SBOM of {document.file or 'the version'} was not stored")
    return blobs.path_of(document.blob_digest).read_bytes()


def _xml_root(data: bytes) -> Any:
    """Parsed without entity expansion or external references (defusedxml)."""
    return ElementTree.fromstring(data)


__all__ = ["GENERATED", "JSON", "PRODUCER", "XML", "Served", "parse_upload", "render"]
