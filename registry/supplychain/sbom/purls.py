"""Package URLs (purl) for the ecosystems the catalogers know, built with packageurl-python.

The purl is a component's identity in the SBOM (its ``bom-ref``) and the key
vulnerability matching uses, so each ecosystem's naming rules live here
once: PEP 503 names for PyPI, ``@scope`` namespaces for npm, group and
artifact for Maven, the distro qualifier for Debian and Alpine packages.
"""

from __future__ import annotations

from packageurl import PackageURL

from registry.supplychain.sbom.inventory import normalize_python


def pypi(name: str, version: str = "") -> str:
    return PackageURL("pypi", None, normalize_python(name), version or None).to_string()


def npm(name: str, version: str = "") -> tuple[str, str, str]:
    """``(purl, scope, bare name)`` for ``name`` (``@scope/name`` or ``name``)."""
    scope, _, bare = name.rpartition("/") if name.startswith("@") else ("", "", name)
    purl = PackageURL("npm", scope or None, bare, version or None).to_string()
    return purl, scope, bare


def maven(group: str, artifact: str, version: str = "") -> str:
    return PackageURL("maven", group or None, artifact, version or None).to_string()


def deb(
    vendor: str, name: str, version: str, *, arch: str = "", distro: str = "", source: str = ""
) -> str:
    qualifiers = {"arch": arch, "distro": distro, "upstream": source}
    return PackageURL(
        "deb",
        vendor or "debian",
        name,
        version,
        {k: v for k, v in qualifiers.items() if v},
    ).to_string()


def apk(vendor: str, name: str, version: str, *, arch: str = "", distro: str = "") -> str:
    qualifiers = {"arch": arch, "distro": distro}
    return PackageURL(
        "apk", vendor or "alpine", name, version, {k: v for k, v in qualifiers.items() if v}
    ).to_string()
