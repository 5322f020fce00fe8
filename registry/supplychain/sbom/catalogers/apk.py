"""Alpine packages: ``lib/apk/db/installed``.

Records are blank-line separated ``X:value`` lines: ``P`` name, ``V``
version, ``A`` architecture, ``L`` license, ``o`` origin, ``C`` checksum
(``Q1`` + base64 SHA-1), ``D`` dependencies and ``p`` what the package
provides. A dependency is a name or a provided virtual (``so:libc.musl...``);
both resolve to the installed package that provides it.
"""

from __future__ import annotations

import base64
import binascii
import re

from registry.supplychain.sbom import licenses, purls
from registry.supplychain.sbom.catalogers import Context, text
from registry.supplychain.sbom.inventory import SHA1, Inventory, Package

_INSTALLED = re.compile(r"(?:^|/)lib/apk/db/installed$")
_CONSTRAINT = re.compile(r"[<>=~]")


class ApkPackages:
    def __init__(self) -> None:
        self.files: list[tuple[str, str]] = []

    def wants(self, path: str) -> bool:
        return bool(_INSTALLED.search(path))

    def take(self, archive: str, path: str, data: bytes) -> None:
        if not archive:
            self.files.append((path, text(data)))

    def finish(self, inventory: Inventory, context: Context) -> None:
        for path, content in self.files:
            records = _records(content)
            providers: dict[str, str] = {}
            packages: list[tuple[Package, list[str]]] = []
            for record in records:
                name, version = _first(record, "P"), _first(record, "V")
                if not name or not version:
                    continue
                license_text = _first(record, "L")
                package = Package(
                    purl=purls.apk(
                        context.distro_id or "alpine",
                        name,
                        version,
                        arch=_first(record, "A"),
                        distro=context.distro,
                    ),
                    name=name,
                    version=version,
                    ecosystem="apk",
                    licenses=licenses.expression(license_text) or licenses.free_text(license_text),
                    hashes=_checksum(_first(record, "C")),
                    location=path,
                    properties={"arbiter:origin": _first(record, "o")}
                    if _first(record, "o")
                    else {},
                )
                providers[name] = package.purl
                for provided in " ".join(record.get("p", [])).split():
                    providers.setdefault(_bare(provided), package.purl)
                packages.append((package, " ".join(record.get("D", [])).split()))
            for package, depends in packages:
                for dep in depends:
                    if dep.startswith("!"):
                        continue  # a conflict, not a dependency
                    target = providers.get(_bare(dep))
                    if target and target != package.purl and target not in package.depends_on:
                        package.depends_on.append(target)
                inventory.add(package)


def _records(content: str) -> list[dict[str, list[str]]]:
    records: list[dict[str, list[str]]] = []
    record: dict[str, list[str]] = {}
    for line in content.splitlines():
        if not line.strip():
            if record:
                records.append(record)
            record = {}
            continue
        key, sep, value = line.partition(":")
        if sep and len(key) == 1:
            record.setdefault(key, []).append(value)
    if record:
        records.append(record)
    return records


def _first(record: dict[str, list[str]], key: str) -> str:
    values = record.get(key)
    return values[0].strip() if values else ""


def _bare(token: str) -> str:
    """``so:libc.so=1`` / ``musl>=1.2`` -> ``so:libc.so`` / ``musl``."""
    return _CONSTRAINT.split(token, maxsplit=1)[0]


def _checksum(value: str) -> dict[str, str]:
    if not value.startswith("Q1"):
        return {}
    try:
        return {SHA1: base64.b64decode(value[2:], validate=True).hex()}
    except (binascii.Error, ValueError):
        return {}
