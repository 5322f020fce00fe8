"""What an analysis found: packages, files and how the packages depend on each other.

Catalogers fill an :class:`Inventory`; :mod:`registry.supplychain.sbom.cyclonedx`
renders it. Keeping the findings in plain dataclasses (not the CycloneDX
model) lets catalogers stay small and keeps rendering in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# CycloneDX hash algorithm names, as the schema spells them.
SHA1 = "SHA-1"
SHA256 = "SHA-256"
SHA512 = "SHA-512"


@dataclass
class Package:
    """A package found in the artifact, or declared by it.

    ``purl`` is the identity (and the SBOM ``bom-ref``). ``version`` is empty
    for a declared dependency without a pinned version, whose range is then
    in ``version_range``; such a component is listed but never matched
    against vulnerability data. ``depends_on`` holds purls of other packages
    of the same inventory, or ``name:`` keys resolved by :meth:`Inventory.link`.
    """

    purl: str
    name: str
    version: str
    ecosystem: str  # purl type: pypi, npm, maven, deb, apk, golang, ...
    group: str = ""
    licenses: str | None = None  # an SPDX expression, or free text
    hashes: dict[str, str] = field(default_factory=dict)  # CycloneDX alg -> hex
    location: str = ""  # where in the artifact it was found
    version_range: str = ""
    scope: str = "required"
    depends_on: list[str] = field(default_factory=list)
    kind: str = "library"  # CycloneDX component type
    properties: dict[str, str] = field(default_factory=dict)


@dataclass
class FileEntry:
    """One regular file of the artifact with its digests."""

    path: str
    size: int
    hashes: dict[str, str]


@dataclass
class Inventory:
    """Everything one analysis found.

    ``root`` is the package the artifact *is* (a wheel, an sdist, an npm
    tarball, a JAR); ``None`` for a plain archive or file, whose SBOM is then
    about the file itself.
    """

    root: Package | None = None
    packages: dict[str, Package] = field(default_factory=dict)  # purl -> package
    files: list[FileEntry] = field(default_factory=list)
    files_omitted: int = 0
    distro: str = ""  # e.g. "debian-12", "alpine-3.19"

    def add(self, package: Package) -> Package:
        """Add ``package`` (first one wins for a purl seen twice, locations accumulate)."""
        existing = self.packages.get(package.purl)
        if existing is None:
            self.packages[package.purl] = package
            return package
        if package.location and package.location not in existing.location.split(";"):
            existing.location = f"{existing.location};{package.location}".strip(";")
        for dep in package.depends_on:
            if dep not in existing.depends_on:
                existing.depends_on.append(dep)
        return existing

    def by_name(self, ecosystem: str, key: str) -> Package | None:
        """An installed (versioned) package of ``ecosystem`` whose name key is ``key``."""
        for package in self.packages.values():
            if package.ecosystem == ecosystem and package.version and name_key(package) == key:
                return package
        return None

    def link(self) -> None:
        """Resolve ``name:`` dependency keys to purls of packages in the inventory.

        Catalogers that only know a dependency's name (dpkg ``Depends``, apk
        ``D:``, ``Requires-Dist`` of an installed Python package) record it as
        ``name:<ecosystem>:<key>``; those that name nothing we found are dropped.
        """
        index: dict[tuple[str, str], str] = {}
        for package in self.packages.values():
            if package.version:
                index.setdefault((package.ecosystem, name_key(package)), package.purl)
        everyone = [*self.packages.values(), *([self.root] if self.root else [])]
        for package in everyone:
            resolved: list[str] = []
            for dep in package.depends_on:
                if dep.startswith("name:"):
                    _, ecosystem, key = dep.split(":", 2)
                    target = index.get((ecosystem, key))
                    if target is None or target == package.purl:
                        continue
                    dep = target
                if dep not in resolved:
                    resolved.append(dep)
            package.depends_on = resolved

    @property
    def licenses(self) -> list[str]:
        """Every license expression found (root included), for the summary."""
        found = [p.licenses for p in self._all() if p.licenses]
        return sorted(set(found))

    def _all(self) -> list[Package]:
        return [*([self.root] if self.root else []), *self.packages.values()]


def name_key(package: Package) -> str:
    """The name a dependency declaration uses for ``package`` in its ecosystem."""
    if package.ecosystem == "pypi":
        return normalize_python(package.name)
    if package.ecosystem == "maven":
        return f"{package.group}:{package.name}"
    if package.ecosystem == "npm" and package.group:
        return f"{package.group}/{package.name}"
    return package.name


def normalize_python(name: str) -> str:
    """PEP 503 normalised project name."""
    out = []
    dash = False
    for char in name.lower():
        if char in "-_.":
            if not dash:
                out.append("-")
            dash = True
        else:
            out.append(char)
            dash = False
    return "".join(out)
