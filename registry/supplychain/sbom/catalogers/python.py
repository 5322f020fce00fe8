"""Python distributions: ``*.dist-info/METADATA``, ``*.egg-info`` and an sdist's ``PKG-INFO``.

A wheel (``name.dist-info/METADATA`` at its top) or an sdist
(``name-version/PKG-INFO``) *is* its package: that one becomes the SBOM's
root, and its ``Requires-Dist`` become declared dependencies (version-less
purls unless pinned with ``==``). Distributions installed in a tree
(``site-packages``) become components whose dependencies point at the other
installed distributions they require.
"""

from __future__ import annotations

import re
from email.parser import HeaderParser
from email.policy import compat32

from packaging.requirements import InvalidRequirement, Requirement

from registry.supplychain.sbom import licenses, purls
from registry.supplychain.sbom.catalogers import Context, text
from registry.supplychain.sbom.inventory import Inventory, Package, normalize_python

_INSTALLED = re.compile(r"(?:^|/)[^/]+\.(?:dist-info/METADATA|egg-info/PKG-INFO|egg-info)$")
_WHEEL_ROOT = re.compile(r"^[^/]+\.dist-info/METADATA$")
_SDIST_ROOT = re.compile(r"^[^/]+/PKG-INFO$")
_MAX_REQUIREMENTS = 2000


class PythonPackages:
    def __init__(self) -> None:
        self.found: list[tuple[str, str, str]] = []  # (archive, path, metadata text)

    def wants(self, path: str) -> bool:
        return bool(_INSTALLED.search(path) or _SDIST_ROOT.match(path))

    def take(self, archive: str, path: str, data: bytes) -> None:
        self.found.append((archive, path, text(data)))

    def finish(self, inventory: Inventory, context: Context) -> None:
        for archive, path, content in self.found:
            is_root = not archive and bool(_WHEEL_ROOT.match(path) or _SDIST_ROOT.match(path))
            location = f"{archive}!/{path}" if archive else path
            package = _package(content, location)
            if package is None:
                continue
            requirements = _requirements(content)
            if is_root and inventory.root is None:
                inventory.root = package
                _declare(inventory, package, requirements)
                continue
            if inventory.root is not None and package.purl == inventory.root.purl:
                continue  # the sdist's own egg-info
            package.depends_on = [f"name:pypi:{normalize_python(r.name)}" for r, _ in requirements]
            inventory.add(package)


def _package(content: str, location: str) -> Package | None:
    headers = HeaderParser(policy=compat32).parsestr(content, headersonly=True)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        return None
    name, version = str(name).strip(), str(version).strip()
    classifiers = [str(c) for c in headers.get_all("Classifier") or []]
    found = licenses.expression(headers.get("License-Expression"), headers.get("License"))
    found = found or licenses.from_classifiers(classifiers)
    found = found or licenses.free_text(headers.get("License"))
    return Package(
        purl=purls.pypi(name, version),
        name=normalize_python(name),
        version=version,
        ecosystem="pypi",
        licenses=found,
        location=location,
    )


def _requirements(content: str) -> list[tuple[Requirement, bool]]:
    """``Requires-Dist`` as requirements and whether each is optional (behind an extra)."""
    headers = HeaderParser(policy=compat32).parsestr(content, headersonly=True)
    found: list[tuple[Requirement, bool]] = []
    for raw in (headers.get_all("Requires-Dist") or [])[:_MAX_REQUIREMENTS]:
        try:
            requirement = Requirement(str(raw))
        except InvalidRequirement:
            continue
        optional = requirement.marker is not None and "extra" in str(requirement.marker)
        found.append((requirement, optional))
    return found


def _declare(
    inventory: Inventory, root: Package, requirements: list[tuple[Requirement, bool]]
) -> None:
    """The root's declared dependencies: components (pinned or not) and graph edges."""
    for requirement, optional in requirements:
        pinned = _pinned(requirement)
        package = inventory.add(
            Package(
                purl=purls.pypi(requirement.name, pinned),
                name=normalize_python(requirement.name),
                version=pinned,
                ecosystem="pypi",
                version_range=str(requirement.specifier),
                scope="optional" if optional else "required",
                location=root.location,
            )
        )
        if package.purl not in root.depends_on:
            root.depends_on.append(package.purl)


def _pinned(requirement: Requirement) -> str:
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return ""
