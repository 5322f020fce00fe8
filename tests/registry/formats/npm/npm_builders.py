"""npm tarballs and publish documents written the way the npm CLI writes them.

``npm pack`` puts every file under ``package/`` in a gzip-compressed tar;
``npm publish`` sends one JSON document with the manifest under
``versions[v]`` (``dist.integrity`` a sha512 SRI string, ``dist.shasum`` the
sha1) and the tarball base64-encoded under ``_attachments``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from typing import Any


def tarball(package_json: Mapping[str, Any] | bytes, *, extra: Mapping[str, bytes] | None = None,
            top: str = "package") -> bytes:  # fmt: skip
    """A gzip-compressed tar holding ``{top}/package.json`` and ``extra`` members."""
    raw = package_json if isinstance(package_json, bytes) else json.dumps(package_json).encode()
    members = {f"{top}/package.json": raw, f"{top}/index.js": b"module.exports = 1;\n"}
    members.update(extra or {})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def manifest(name: str, version: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "version": version, "description": f"{name} for tests", **fields}


def publish_document(
    name: str,
    version: str,
    data: bytes,
    *,
    published: Mapping[str, Any] | None = None,
    tag: str = "latest",
    integrity: str | None = None,
    shasum: str | None = None,
    attachment: str | None = None,
) -> dict[str, Any]:
    """The body of ``npm publish`` for ``data`` (the tarball)."""
    version_manifest = dict(published or manifest(name, version))
    version_manifest["_id"] = f"{name}@{version}"
    sha512 = base64.b64encode(hashlib.sha512(data).digest()).decode()
    version_manifest["dist"] = {
        "integrity": integrity or f"sha512-{sha512}",
        "shasum": shasum or hashlib.sha1(data).hexdigest(),
        "tarball": f"http://registry.invalid/{name}/-/{name}-{version}.tgz",
    }
    filename = attachment or f"{name}-{version}.tgz"
    return {
        "_id": name,
        "name": name,
        "description": version_manifest.get("description"),
        "dist-tags": {tag: version},
        "versions": {version: version_manifest},
        "access": "public",
        "_attachments": {
            filename: {
                "content_type": "application/octet-stream",
                "data": base64.b64encode(data).decode(),
                "length": len(data),
            }
        },
    }
