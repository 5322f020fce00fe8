"""Debian packages: ``var/lib/dpkg/status`` and the distroless ``var/lib/dpkg/status.d/*``.

Only paragraphs whose ``Status`` says installed count (status.d files carry
no ``Status``: everything there is installed). ``Depends`` and
``Pre-Depends`` become graph edges to the installed packages they name
(every alternative of ``a | b`` that is installed). The purl carries the
architecture, the ``distro`` from os-release and, when the binary package
comes from a differently named source package, ``upstream`` (which is what
Debian's advisories name).
"""

from __future__ import annotations

import re

from registry.supplychain.sbom import purls
from registry.supplychain.sbom.catalogers import Context, text
from registry.supplychain.sbom.inventory import Inventory, Package

_STATUS = re.compile(r"(?:^|/)var/lib/dpkg/(?:status|status\.d/[^/]+)$")
_RELATION = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9+.\-]*)")


class DpkgPackages:
    def __init__(self) -> None:
        self.files: list[tuple[str, str]] = []

    def wants(self, path: str) -> bool:
        return bool(_STATUS.search(path)) and not path.endswith((".md5sums", ".preinst"))

    def take(self, archive: str, path: str, data: bytes) -> None:
        if not archive:
            self.files.append((path, text(data)))

    def finish(self, inventory: Inventory, context: Context) -> None:
        vendor = context.distro_id or "debian"
        for path, content in self.files:
            for fields in paragraphs(content):
                status = fields.get("Status")
                if status is not None and not status.endswith(" installed"):
                    continue
                name, version = fields.get("Package"), fields.get("Version")
                if not name or not version:
                    continue
                source = fields.get("Source", "").split(" ")[0]
                package = Package(
                    purl=purls.deb(
                        vendor,
                        name,
                        version,
                        arch=fields.get("Architecture", ""),
                        distro=context.distro,
                        source=source if source and source != name else "",
                    ),
                    name=name,
                    version=version,
                    ecosystem="deb",
                    location=path,
                    properties={"arbiter:source-package": source} if source else {},
                )
                package.depends_on = [
                    f"name:deb:{dep}"
                    for dep in relations(fields.get("Depends", ""), fields.get("Pre-Depends", ""))
                ]
                inventory.add(package)


def paragraphs(content: str) -> list[dict[str, str]]:
    """Deb822 paragraphs as ``{field: value}`` (continuation lines joined)."""
    found: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    last = ""
    for line in content.splitlines():
        if not line.strip():
            if fields:
                found.append(fields)
            fields, last = {}, ""
            continue
        if line[0] in " \t" and last:
            fields[last] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip()
            fields[last] = value.strip()
    if fields:
        found.append(fields)
    return found


def relations(*values: str) -> list[str]:
    """Package names in dependency fields (``a (>= 1) | b, c:any``)."""
    names: list[str] = []
    for value in values:
        for clause in value.split(","):
            for alternative in clause.split("|"):
                match = _RELATION.match(alternative.split(":")[0])
                if match and match.group(1) not in names:
                    names.append(match.group(1))
    return names
