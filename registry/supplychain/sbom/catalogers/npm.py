"""npm packages: ``package.json`` (the tarball's own, and under ``node_modules``) and lock files.

An npm tarball (``package/package.json``) *is* its package: the SBOM's root.
Its dependencies come from ``package-lock.json``/``npm-shrinkwrap.json`` when
the tarball carries one (resolved versions, integrity hashes, the graph by
Node's lookup rules), else from ``dependencies`` and
``optionalDependencies`` as declared ranges. Development dependencies are not
listed: they are not part of what is installed. Installed packages
(``node_modules/**/package.json``) become components whose dependencies point
at the installed packages they name.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from registry.supplychain.sbom import licenses, purls
from registry.supplychain.sbom.catalogers import Context, text
from registry.supplychain.sbom.inventory import SHA1, SHA512, Inventory, Package

_INSTALLED = re.compile(r"(?:^|/)node_modules/(?:@[^/]+/)?[^/]+/package\.json$")
_ROOT = "package/package.json"
_PROJECT = re.compile(r"^(?:[^/]+/)?package\.json$")
_ROOT_LOCKS = ("package/package-lock.json", "package/npm-shrinkwrap.json")
_LOCK = re.compile(r"(?:^|/)(?:package-lock|npm-shrinkwrap)\.json$")
_INTEGRITY = {"sha512": SHA512, "sha1": SHA1}


class NpmPackages:
    def __init__(self) -> None:
        self.manifests: list[tuple[str, str, Any]] = []
        self.locks: list[tuple[str, Any]] = []

    def wants(self, path: str) -> bool:
        if _LOCK.search(path):
            return "node_modules/" not in path
        return bool(_INSTALLED.search(path) or _PROJECT.match(path))

    def take(self, archive: str, path: str, data: bytes) -> None:
        if archive:
            return
        try:
            document = json.loads(text(data))
        except ValueError:
            return
        if not isinstance(document, dict):
            return
        if _LOCK.search(path):
            self.locks.append((path, document))
        else:
            self.manifests.append((path, path, document))

    def finish(self, inventory: Inventory, context: Context) -> None:
        root_manifest: dict[str, Any] | None = None
        for path, location, manifest in self.manifests:
            package = _package(manifest, location)
            if package is None:
                continue
            if path == _ROOT and inventory.root is None:
                inventory.root = package
                root_manifest = manifest
                continue
            if _INSTALLED.search(path):
                package.depends_on = [f"name:npm:{name}" for name in _names(manifest)]
            else:
                package.kind = "application"
            inventory.add(package)
        locked = False
        for path, lock in self.locks:
            root = inventory.root if path in _ROOT_LOCKS else None
            listed = _lock_packages(inventory, lock, path, root)
            locked |= listed and root is not None
        if inventory.root is not None and root_manifest is not None and not locked:
            _declare(inventory, inventory.root, root_manifest)


def _package(manifest: Mapping[str, Any], location: str) -> Package | None:
    name, version = manifest.get("name"), manifest.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name:
        return None
    purl, scope, bare = purls.npm(name, version)
    return Package(
        purl=purl,
        name=bare,
        group=scope,
        version=version,
        ecosystem="npm",
        licenses=_license(manifest),
        location=location,
    )


def _license(manifest: Mapping[str, Any]) -> str | None:
    value = manifest.get("license")
    if isinstance(value, dict):
        value = value.get("type")
    if isinstance(value, str):
        return licenses.expression(value) or licenses.free_text(value)
    legacy = manifest.get("licenses")
    if isinstance(legacy, list):
        names = [item.get("type") if isinstance(item, dict) else item for item in legacy]
        found = [licenses.expression(n) for n in names if isinstance(n, str)]
        ids = [f for f in found if f]
        if ids:
            return ids[0] if len(ids) == 1 else "(" + " OR ".join(ids) + ")"
    return None


def _names(manifest: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for key in ("dependencies", "optionalDependencies"):
        value = manifest.get(key)
        if isinstance(value, dict):
            names.extend(str(name) for name in value)
    return names


def _declare(inventory: Inventory, root: Package, manifest: Mapping[str, Any]) -> None:
    for key, scope in (("dependencies", "required"), ("optionalDependencies", "optional")):
        declared = manifest.get(key)
        if not isinstance(declared, dict):
            continue
        for name, spec in declared.items():
            purl, group, bare = purls.npm(str(name))
            package = inventory.add(
                Package(
                    purl=purl,
                    name=bare,
                    group=group,
                    version="",
                    ecosystem="npm",
                    version_range=str(spec),
                    scope=scope,
                    location=root.location,
                )
            )
            if package.purl not in root.depends_on:
                root.depends_on.append(package.purl)


def _lock_packages(
    inventory: Inventory, lock: Mapping[str, Any], path: str, root: Package | None
) -> bool:
    """Packages of a lock file (v1, v2 or v3) with their graph; True when it listed any."""
    entries = _entries(lock)
    if not entries:
        return False
    location = path
    by_key: dict[str, Package] = {}
    for key, entry in entries.items():
        if not key or entry.get("link") or entry.get("dev"):
            continue
        name = entry.get("name") or key.rsplit("node_modules/", 1)[-1]
        version = entry.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            continue
        purl, group, bare = purls.npm(name, version)
        package = inventory.add(
            Package(
                purl=purl,
                name=bare,
                group=group,
                version=version,
                ecosystem="npm",
                licenses=_license(entry),
                hashes=_integrity(entry.get("integrity")),
                location=location,
                scope="optional" if entry.get("optional") else "required",
            )
        )
        by_key[key] = package
    for key, package in by_key.items():
        for name in _dependency_names(entries[key]):
            target = _resolve(by_key, key, name)
            if target is not None and target.purl not in package.depends_on:
                package.depends_on.append(target.purl)
    if root is not None:
        top = entries.get("", {})
        names = _dependency_names(top) or [
            k.removeprefix("node_modules/") for k in by_key if k.count("node_modules/") == 1
        ]
        for name in names:
            target = by_key.get(f"node_modules/{name}")
            if target is not None and target.purl not in root.depends_on:
                root.depends_on.append(target.purl)
    return bool(by_key)


def _entries(lock: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"node_modules/a/node_modules/b": entry}`` for lock v2/v3 (``packages``) and v1."""
    packages = lock.get("packages")
    if isinstance(packages, dict):
        return {str(k): v for k, v in packages.items() if isinstance(v, dict)}
    found: dict[str, dict[str, Any]] = {}
    pending: list[tuple[str, Any]] = [("", lock.get("dependencies"))]
    while pending and len(found) < 200_000:
        prefix, dependencies = pending.pop()
        if not isinstance(dependencies, dict):
            continue
        for name, entry in dependencies.items():
            if not isinstance(entry, dict):
                continue
            key = f"{prefix}node_modules/{name}"
            found[key] = {**entry, "name": name, "dependencies": entry.get("requires", {})}
            pending.append((f"{key}/", entry.get("dependencies")))
    return found


def _dependency_names(entry: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for key in ("dependencies", "optionalDependencies"):
        value = entry.get(key)
        if isinstance(value, dict):
            names.extend(str(name) for name in value)
    return names


def _resolve(by_key: Mapping[str, Package], key: str, name: str) -> Package | None:
    """Node's lookup: the nearest ``node_modules/NAME`` from ``key`` upwards."""
    base = key
    while True:
        found = by_key.get(f"{base}/node_modules/{name}" if base else f"node_modules/{name}")
        if found is not None:
            return found
        if not base:
            return None
        cut = base.rfind("/node_modules/")
        base = base[:cut] if cut >= 0 else ""


def _integrity(value: Any) -> dict[str, str]:
    """Subresource-integrity strings (``sha512-<base64>``) as CycloneDX hashes in hex."""
    if not isinstance(value, str):
        return {}
    hashes: dict[str, str] = {}
    for token in value.split():
        algorithm, _, encoded = token.partition("-")
        name = _INTEGRITY.get(algorithm)
        if name is None:
            continue
        try:
            hashes[name] = base64.b64decode(encoded, validate=True).hex()
        except (binascii.Error, ValueError):
            continue
    return hashes
