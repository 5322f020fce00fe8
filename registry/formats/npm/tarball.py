"""Read a staged npm tarball: is it sound, and does its package.json agree with the publish?

``npm install`` runs what the *tarball* holds, while the registry serves the
*publish document's* manifest; when the two disagree (different
dependencies, another name) installers see one package and run another --
"manifest confusion". So the tarball is inspected (bounded, streaming, see
:mod:`registry.packages.archives`) and checked against the manifest:

1. a gzip-compressed tar whose members all sit under one directory
   (``package/`` as ``npm pack`` writes it), with ``package.json`` at its top;
2. package.json is a JSON object whose ``name`` and ``version`` are the
   published ones;
3. its dependencies (runtime and optional, which npm folds together) are the
   manifest's.

The facts for the policy (license, dependencies, engines) come from the
tarball's package.json, the package itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, BinaryIO

from registry.packages import ArchiveLimits, PackageInvalid, TarArchive, license_ids
from registry.packages.licenses import spdx_expression

DEPENDENCY_FIELDS = ("dependencies", "optionalDependencies", "peerDependencies")


@dataclass(frozen=True)
class PackageJson:
    """The tarball's package.json, read and checked."""

    document: dict[str, Any]

    @property
    def license(self) -> str | None:
        """The declared license: a string, or a legacy ``{"type": ...}`` object."""
        value = self.document.get("license")
        if isinstance(value, dict):
            value = value.get("type")
        if value is None and isinstance(self.document.get("licenses"), list):
            types = [str(x.get("type")) for x in self.document["licenses"] if isinstance(x, dict)]
            value = " OR ".join(types) if types else None
        return value if isinstance(value, str) else None

    @property
    def license_expression(self) -> str | None:
        return spdx_expression(self.license)

    @property
    def licenses(self) -> list[str]:
        return license_ids(self.license_expression)

    def dependencies(self) -> dict[str, dict[str, str]]:
        return {field: _string_map(self.document.get(field)) for field in DEPENDENCY_FIELDS}

    def purls(self) -> list[str]:
        names: set[str] = set()
        for declared in self.dependencies().values():
            names.update(declared)
        return [f"pkg:npm/{_purl_name(name)}" for name in sorted(names)]


def _string_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _purl_name(name: str) -> str:
    """``@scope/name`` -> ``%40scope/name`` (the purl spec encodes the scope's ``@``)."""
    return name.replace("@", "%40", 1) if name.startswith("@") else name


def inspect(file: BinaryIO, limits: ArchiveLimits, name: str, version: str) -> PackageJson:
    """Check the tarball and return its package.json."""

    def want(member: str) -> bool:
        return member.count("/") == 1 and member.endswith("/package.json")

    contents = TarArchive.scan(file, limits, want, what="package tarball")
    tops = contents.top_levels
    if len(tops) != 1:
        raise PackageInvalid(
            "every file of the package tarball must sit under one directory (package/, as "
            f"npm pack writes it); found {', '.join(sorted(tops)[:5])}"
        )
    top = tops.pop()
    raw = contents.files.get(f"{top}/package.json")
    if raw is None:
        raise PackageInvalid(f"the package tarball has no {top}/package.json")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise PackageInvalid(f"package.json in the tarball is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise PackageInvalid("package.json in the tarball must be a JSON object")
    if document.get("name") != name:
        raise PackageInvalid(
            f"package.json in the tarball names {document.get('name')!r}, not {name!r}"
        )
    if document.get("version") != version:
        raise PackageInvalid(
            f"package.json in the tarball says version {document.get('version')!r}, not {version}"
        )
    return PackageJson(document)


def check_manifest(manifest: dict[str, Any], package: PackageJson) -> None:
    """The published manifest must declare the tarball's dependencies (no manifest confusion)."""
    for label, fields in (("dependencies", DEPENDENCY_FIELDS[:2]), ("peerDependencies", ())):
        names = fields or (label,)
        published = {k: v for f in names for k, v in _string_map(manifest.get(f)).items()}
        packed = {k: v for f in names for k, v in _string_map(package.document.get(f)).items()}
        if published != packed:
            differing = sorted(set(published.items()) ^ set(packed.items()))
            shown = ", ".join(f"{k}@{v}" for k, v in differing[:5])
            raise PackageInvalid(
                f"the published {label} differ from package.json in the tarball ({shown}); "
                "publish the tarball's own package.json"
            )
