"""``etc/os-release``: which distribution a root file system is, for the ``distro`` qualifier."""

from __future__ import annotations

import shlex

from registry.supplychain.sbom.catalogers import Context, text
from registry.supplychain.sbom.inventory import Inventory

PATHS = ("etc/os-release", "usr/lib/os-release")


class OsRelease:
    """Reads ``ID`` and ``VERSION_ID``; the first os-release seen wins."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def wants(self, path: str) -> bool:
        return path.endswith(PATHS) and not self.fields

    def take(self, archive: str, path: str, data: bytes) -> None:
        if archive:
            return
        self.fields = parse(text(data))

    def finish(self, inventory: Inventory, context: Context) -> None:
        context.distro_id = self.fields.get("ID", "").lower()
        context.distro_version = self.fields.get("VERSION_ID", "")
        inventory.distro = context.distro


def parse(content: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in content.splitlines():
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or key.strip().startswith("#"):
            continue
        try:
            parts = shlex.split(value)
        except ValueError:
            parts = [value.strip("\"'")]
        fields[key.strip()] = parts[0] if parts else ""
    return fields
