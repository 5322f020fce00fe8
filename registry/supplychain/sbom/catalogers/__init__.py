"""Catalogers: each recognises one kind of package metadata among an artifact's files.

A cataloger says which paths it :meth:`~Cataloger.wants`, is handed those
files' bytes (at most ``max_metadata_size`` each) as the walk passes them,
and turns what it collected into packages when the walk is over. ``archive``
is ``""`` for the artifact itself, else the path of the nested archive (a
JAR or wheel inside it) the file was found in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from registry.supplychain.sbom.inventory import Inventory


@dataclass
class Context:
    """What catalogers share: the artifact's file name and the distro found in it."""

    filename: str
    distro_id: str = ""  # os-release ID: debian, ubuntu, alpine, ...
    distro_version: str = ""  # os-release VERSION_ID

    @property
    def distro(self) -> str:
        """``debian-12``, ``alpine-3.19.1``: the purl ``distro`` qualifier."""
        if not self.distro_id:
            return ""
        return f"{self.distro_id}-{self.distro_version}" if self.distro_version else self.distro_id


class Cataloger(Protocol):
    def wants(self, path: str) -> bool:
        """Whether the file at ``path`` (inside any archive) is this cataloger's metadata."""
        ...

    def take(self, archive: str, path: str, data: bytes) -> None:
        """Keep the bytes of a wanted file (parsing may wait until :meth:`finish`)."""
        ...

    def finish(self, inventory: Inventory, context: Context) -> None:
        """Add the packages found to ``inventory`` (and its root, when it is one of them)."""
        ...


def text(data: bytes) -> str:
    """Metadata bytes as text: UTF-8, else Latin-1 (never fails)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


__all__ = ["Cataloger", "Context", "text"]
