"""Java archives: ``META-INF/MANIFEST.MF`` and ``META-INF/maven/**/pom.properties``.

Each JAR, WAR or EAR (the artifact itself, or one nested in it) yields the
Maven coordinates its ``pom.properties`` files state; a fat JAR states
several. Without one, the manifest's ``Implementation-*``/``Bundle-*``
headers and the file name give a best guess, marked as such in the
component's properties. A JAR pushed as the artifact is the SBOM's root.
"""

from __future__ import annotations

import posixpath
import re

from registry.supplychain.sbom import licenses, purls
from registry.supplychain.sbom.catalogers import Context, text
from registry.supplychain.sbom.inventory import Inventory, Package

JAVA_ARCHIVES = (".jar", ".war", ".ear")
_POM = re.compile(r"^META-INF/maven/[^/]+/[^/]+/pom\.properties$")
_MANIFEST = "META-INF/MANIFEST.MF"
_VERSIONED_NAME = re.compile(r"^(?P<name>.+?)-(?P<version>\d[\w.\-+]*)$")


class JavaPackages:
    def __init__(self) -> None:
        self.manifests: dict[str, dict[str, str]] = {}
        self.poms: dict[str, list[dict[str, str]]] = {}
        self.hashes: dict[str, dict[str, str]] = {}

    def wants(self, path: str) -> bool:
        return path == _MANIFEST or bool(_POM.match(path))

    def take(self, archive: str, path: str, data: bytes) -> None:
        if path == _MANIFEST:
            self.manifests[archive] = manifest(text(data))
        else:
            self.poms.setdefault(archive, []).append(properties(text(data)))

    def archive(self, archive: str, hashes: dict[str, str]) -> None:
        """The digests of a nested archive, for its component."""
        self.hashes[archive] = hashes

    def finish(self, inventory: Inventory, context: Context) -> None:
        top_is_java = context.filename.lower().endswith(JAVA_ARCHIVES)
        for archive in sorted(set(self.manifests) | set(self.poms)):
            if not archive and not top_is_java:
                continue
            file_name = posixpath.basename(archive or context.filename)
            found = _from_poms(self.poms.get(archive, []), archive or file_name)
            if not found:
                guess = _from_manifest(self.manifests.get(archive, {}), file_name, archive)
                found = [guess] if guess else []
            for package in found:
                package.hashes = dict(self.hashes.get(archive, {}))
                if not archive and inventory.root is None:
                    inventory.root = package
                    continue
                inventory.add(package)


def _from_poms(poms: list[dict[str, str]], location: str) -> list[Package]:
    found = []
    for pom in poms:
        group, artifact, version = pom.get("groupId"), pom.get("artifactId"), pom.get("version")
        if not group or not artifact or not version:
            continue
        found.append(
            Package(
                purl=purls.maven(group, artifact, version),
                name=artifact,
                group=group,
                version=version,
                ecosystem="maven",
                location=location,
            )
        )
    return found


def _from_manifest(headers: dict[str, str], file_name: str, archive: str) -> Package | None:
    stem = file_name.rsplit(".", 1)[0]
    match = _VERSIONED_NAME.match(stem)
    name = match.group("name") if match else stem
    version = (
        headers.get("Implementation-Version")
        or headers.get("Bundle-Version")
        or (match.group("version") if match else "")
    )
    if not name or not version:
        return None
    symbolic = headers.get("Bundle-SymbolicName", "").split(";")[0].strip()
    group = headers.get("Implementation-Vendor-Id") or (
        symbolic.rsplit(".", 1)[0] if "." in symbolic else name
    )
    license_text = headers.get("Bundle-License")
    return Package(
        purl=purls.maven(group, name, version),
        name=name,
        group=group,
        version=version,
        ecosystem="maven",
        licenses=licenses.expression(license_text),
        location=archive or file_name,
        properties={"arbiter:identified-by": "manifest"},
    )


def manifest(content: str) -> dict[str, str]:
    """The main section of a JAR manifest (72-byte lines continued with a space)."""
    headers: dict[str, str] = {}
    last = ""
    for line in content.splitlines():
        if not line:
            break  # the main section ends at the first blank line
        if line.startswith(" ") and last:
            headers[last] += line[1:]
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip()
            headers[last] = value.strip()
    return headers


def properties(content: str) -> dict[str, str]:
    """A Java ``.properties`` file's ``key=value`` lines (comments skipped)."""
    values: dict[str, str] = {}
    for line in content.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "!")):
            continue
        key, sep, value = stripped.partition("=")
        if not sep:
            key, sep, value = stripped.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    return values
