"""Build OCI content and push it over the distribution API, with any httpx-like client."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


class Client(Protocol):
    def request(self, method: str, url: str, **kwargs: Any) -> Any: ...


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


@dataclass
class Image:
    """A config, some layers and the manifest naming them."""

    config: bytes
    layers: list[bytes]
    manifest: bytes
    extra_blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    def blobs(self) -> dict[str, bytes]:
        found = {sha256(self.config): self.config, **self.extra_blobs}
        found.update({sha256(layer): layer for layer in self.layers})
        return found


def make_image(
    layers: int = 2,
    *,
    media_type: str = OCI_MANIFEST,
    subject: dict[str, Any] | None = None,
    artifact_type: str | None = None,
    config_type: str = OCI_CONFIG,
    layer_type: str = OCI_LAYER,
    annotations: dict[str, str] | None = None,
    layer_size: int = 1024,
    shared: Sequence[bytes] = (),
) -> Image:
    """An image of ``shared`` layers (another image's, say) then ``layers`` random ones."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": os.urandom(8).hex()}).encode()
    data = [*shared, *(os.urandom(layer_size) for _ in range(layers))]
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(config_type, config),
        "layers": [descriptor(layer_type, layer) for layer in data],
    }
    if artifact_type:
        manifest["artifactType"] = artifact_type
    if subject:
        manifest["subject"] = subject
    if annotations:
        manifest["annotations"] = annotations
    return Image(config, data, json.dumps(manifest).encode())


def make_index(children: list[Image], media_type: str = OCI_INDEX) -> bytes:
    child_type = DOCKER_MANIFEST if media_type == DOCKER_LIST else OCI_MANIFEST
    manifests = [
        {**descriptor(child_type, child.manifest), "platform": {"os": "linux", "architecture": a}}
        for child, a in zip(children, ("amd64", "arm64", "s390x", "ppc64le"), strict=False)
    ]
    index = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    return json.dumps(index).encode()


def push_blob(client: Client, base: str, name: str, data: bytes, headers: dict[str, str]) -> Any:
    """POST then PUT with the body: the monolithic upload every client supports."""
    started = client.request("POST", f"{base}/v2/{name}/blobs/uploads/", headers=headers)
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    url = location if location.startswith("http") else base + location
    separator = "&" if "?" in url else "?"
    done = client.request(
        "PUT", f"{url}{separator}digest={sha256(data)}", content=data, headers=headers
    )
    assert done.status_code == 201, done.text
    return done


def push_manifest(
    client: Client, base: str, name: str, reference: str, body: bytes, headers: dict[str, str]
) -> Any:
    media_type = json.loads(body).get("mediaType", OCI_MANIFEST)
    return client.request(
        "PUT",
        f"{base}/v2/{name}/manifests/{reference}",
        content=body,
        headers={**headers, "Content-Type": media_type},
    )


def push_image(
    client: Client, base: str, name: str, image: Image, tag: str, headers: dict[str, str]
) -> Any:
    for data in image.blobs().values():
        push_blob(client, base, name, data, headers)
    response = push_manifest(client, base, name, tag, image.manifest, headers)
    assert response.status_code == 201, response.text
    return response


def error_code(response: Any) -> str:
    return str(response.json()["errors"][0]["code"])
