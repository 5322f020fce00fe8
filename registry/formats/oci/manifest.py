"""Manifest media types and validation: what a manifest references, checked as guard clauses.

Four media types are accepted: the OCI image manifest and index, and Docker's
schema 2 manifest and manifest list (their shapes are the same as the OCI
ones for everything the registry needs). Anything else, malformed JSON, or a
``Content-Type`` that contradicts the body's ``mediaType`` is MANIFEST_INVALID.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from registry.formats.oci import digests
from registry.formats.oci.errors import OciError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = IMAGE_TYPES | INDEX_TYPES

MAX_MANIFEST_SIZE = 4 * 1024 * 1024
_GENERIC_CONTENT_TYPES = frozenset({"", "application/json", "application/octet-stream"})


@dataclass(frozen=True)
class Descriptor:
    """A reference from a manifest to a blob or another manifest."""

    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()

    @property
    def external(self) -> bool:
        """Layers with URLs (non-distributable) are fetched elsewhere and never pushed here."""
        return bool(self.urls)


@dataclass(frozen=True)
class Manifest:
    """The parts of a manifest the registry acts on."""

    media_type: str
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def blobs(self) -> list[Descriptor]:
        """Blobs that must be in the image before the manifest may be: config and layers."""
        found = [self.config] if self.config is not None else []
        found += [layer for layer in self.layers if not layer.external]
        return _unique(found)

    def referrer_type(self) -> str | None:
        """``artifactType`` as the referrers API reports it (the config's type as fallback)."""
        if self.artifact_type:
            return self.artifact_type
        if self.config is not None and not self.is_index:
            return self.config.media_type
        return None

    def content_size(self, own_size: int) -> int:
        """The manifest plus everything it references: the size the policy judges."""
        referenced = [*self.blobs(), *self.manifests]
        return own_size + sum(d.size for d in referenced)


def parse(body: bytes, content_type: str | None) -> Manifest:
    """Parse and check ``body``; every problem is MANIFEST_INVALID with a reason."""
    document = _json_object(body)
    if document.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2 (schema 1 manifests are not supported)")
    media_type = _media_type(document, content_type)
    subject = _descriptor(document["subject"], "subject") if "subject" in document else None
    artifact_type = _optional_string(document, "artifactType")
    annotations = _annotations(document.get("annotations"))
    if media_type in INDEX_TYPES:
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise _invalid("an index needs a 'manifests' list")
        return Manifest(
            media_type=media_type,
            manifests=tuple(_descriptor(e, "manifests[]") for e in entries),
            subject=subject,
            artifact_type=artifact_type,
            annotations=annotations,
        )
    if "config" not in document:
        raise _invalid("an image manifest needs a 'config' descriptor")
    layers = document.get("layers", [])
    if not isinstance(layers, list):
        raise _invalid("'layers' must be a list of descriptors")
    return Manifest(
        media_type=media_type,
        config=_descriptor(document["config"], "config"),
        layers=tuple(_descriptor(layer, "layers[]") for layer in layers),
        subject=subject,
        artifact_type=artifact_type,
        annotations=annotations,
    )


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _invalid(f"the body is not JSON ({error})") from None
    if not isinstance(document, dict):
        raise _invalid("the body must be a JSON object")
    return document


def _media_type(document: Mapping[str, Any], content_type: str | None) -> str:
    declared = _optional_string(document, "mediaType")
    header = (content_type or "").split(";", 1)[0].strip().lower()
    if header in _GENERIC_CONTENT_TYPES:
        header = ""
    if declared and header and declared != header:
        raise _invalid(
            f"Content-Type {header} does not match the manifest's mediaType {declared}; "
            "send the manifest's own media type"
        )
    media_type = declared or header or _guess(document)
    if media_type not in MANIFEST_TYPES:
        accepted = ", ".join(sorted(MANIFEST_TYPES))
        raise _invalid(f"media type {media_type} is not accepted; use one of {accepted}")
    return media_type


def _guess(document: Mapping[str, Any]) -> str:
    """OCI allows omitting ``mediaType``; the shape tells an index from an image."""
    return OCI_INDEX if "manifests" in document else OCI_MANIFEST


def _descriptor(value: object, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be a descriptor object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where} needs a mediaType")
    if not isinstance(digest, str):
        raise _invalid(f"{where} needs a digest")
    try:
        digests.parse(digest)
    except OciError as error:
        raise _invalid(f"{where}: {error.message}") from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where} needs a non-negative integer size")
    urls = value.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise _invalid(f"{where}: urls must be a list of strings")
    return Descriptor(media_type=media_type, digest=digest, size=size, urls=tuple(urls))


def _optional_string(document: Mapping[str, Any], key: str) -> str | None:
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{key} must be a string")
    return value


def _annotations(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _invalid("annotations must map strings to strings")
    return dict(value)


def _unique(descriptors: list[Descriptor]) -> list[Descriptor]:
    seen: dict[str, Descriptor] = {}
    for descriptor in descriptors:
        seen.setdefault(descriptor.digest, descriptor)
    return list(seen.values())


def _invalid(reason: str) -> OciError:
    return OciError("MANIFEST_INVALID", f"manifest invalid: {reason}")
