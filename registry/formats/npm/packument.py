"""Packuments: the full document (``npm view``, ``npm publish``'s reads) and the abbreviated one.

``npm install`` asks for ``application/vnd.npm.install-v1+json`` and gets
only what installing needs (the "corgi" format of npm's registry API); every
other reader gets the full document with ``time``, ``_rev`` and each version's
whole manifest. Tarball URLs are absolute and built from the request's own
base URL, so the registry answers correctly under any host name.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from registry.formats.npm.lookups import PackageState, VersionRow

ABBREVIATED = "application/vnd.npm.install-v1+json"
# The fields of a version the abbreviated format keeps (npm/registry docs).
ABBREVIATED_FIELDS = (
    "name",
    "version",
    "deprecated",
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "bundleDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "acceptDependencies",
    "bin",
    "directories",
    "engines",
    "cpu",
    "os",
    "libc",
    "funding",
    "license",
    "_hasShrinkwrap",
    "hasInstallScript",
)


def wants_abbreviated(accept: str | None) -> bool:
    return bool(accept) and ABBREVIATED in (accept or "")


def tarball_url(base: str, name: str, row: VersionRow) -> str:
    filename = row.tarball.filename if row.tarball else f"{name}-{row.version}.tgz"
    return f"{base}/{name}/-/{filename}"


def _dist(base: str, name: str, row: VersionRow) -> dict[str, Any]:
    dist = dict(row.manifest.get("dist") or {})
    if row.tarball is not None:
        dist.update(
            integrity=row.tarball.meta.get("integrity", dist.get("integrity")),
            shasum=row.tarball.meta.get("shasum", dist.get("shasum")),
            unpackedSize=dist.get("unpackedSize"),
        )
        dist = {k: v for k, v in dist.items() if v is not None}
    dist["tarball"] = tarball_url(base, name, row)
    return dist


def _iso(row: VersionRow) -> str:
    moment = row.created_at
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def revision(state: PackageState) -> str:
    """A CouchDB-style ``_rev`` that changes with every version, tag or deprecation."""
    digest = hashlib.md5(usedforsecurity=False)
    for row in state.versions:
        digest.update(f"{row.id}:{row.version}:{row.manifest.get('deprecated', '')}\n".encode())
    digest.update(json.dumps(state.tags, sort_keys=True).encode())
    return f"{len(state.versions)}-{digest.hexdigest()}"


def _latest(state: PackageState) -> VersionRow | None:
    latest = state.tags.get("latest")
    return state.version(latest) if latest else (state.versions[-1] if state.versions else None)


def full(base: str, state: PackageState) -> dict[str, Any]:
    name = state.name
    versions = {}
    times: dict[str, str] = {}
    for row in state.versions:
        manifest = dict(row.manifest)
        manifest["dist"] = _dist(base, name, row)
        versions[row.version] = manifest
        times[row.version] = _iso(row)
    latest = _latest(state)
    document: dict[str, Any] = {
        "_id": name,
        "_rev": revision(state),
        "name": name,
        "dist-tags": dict(state.tags),
        "versions": versions,
        "time": {
            "created": min(times.values(), default=None),
            "modified": max(times.values(), default=None),
            **times,
        },
    }
    if latest is not None:
        for key in ("description", "license", "homepage", "repository", "keywords", "readme"):
            if key in latest.manifest:
                document[key] = latest.manifest[key]
    return document


def abbreviated(base: str, state: PackageState) -> dict[str, Any]:
    name = state.name
    versions = {}
    for row in state.versions:
        manifest = {k: row.manifest[k] for k in ABBREVIATED_FIELDS if k in row.manifest}
        manifest["dist"] = _dist(base, name, row)
        versions[row.version] = manifest
    modified = state.modified
    return {
        "name": name,
        "modified": modified.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if modified else None,
        "dist-tags": dict(state.tags),
        "versions": versions,
    }


def full_body(base: str, state: PackageState) -> bytes:
    """The full document as served (``JSONResponse``'s rendering: UTF-8, compact)."""
    return json.dumps(
        full(base, state), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode()


def abbreviated_body(base: str, state: PackageState) -> bytes:
    """The abbreviated document as served (ASCII-escaped, compact)."""
    return json.dumps(abbreviated(base, state), separators=(",", ":")).encode()
