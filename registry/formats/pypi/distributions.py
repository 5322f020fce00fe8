"""Read a staged wheel or sdist: is it sound, and what does its own metadata say?

Inspection runs in a worker thread on the staged file (never the request
body, never the whole file in memory) through the bounded readers of
:mod:`registry.packages.archives`:

1. wheel: a zip with exactly one ``{name}-{version}.dist-info`` directory
   matching the file name, holding ``METADATA``, ``WHEEL`` and ``RECORD``;
   its ``METADATA`` is kept byte for byte (PEP 658 serves it beside the wheel);
2. sdist: a gzip-compressed tar whose members all sit under one
   ``{name}-{version}/`` directory matching the file name, with ``PKG-INFO``
   at its top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from packaging.version import InvalidVersion, Version

from registry.formats.pypi.metadata import CoreMetadata, parse_core_metadata
from registry.formats.pypi.names import DistributionFile, normalize
from registry.packages import ArchiveLimits, PackageInvalid, TarArchive, ZipArchive

WHEEL_REQUIRED = ("METADATA", "WHEEL", "RECORD")


@dataclass(frozen=True)
class Inspected:
    """A distribution's metadata, and the METADATA file itself for a wheel."""

    metadata: CoreMetadata
    metadata_file: bytes | None


def inspect(file: BinaryIO, dist: DistributionFile, limits: ArchiveLimits) -> Inspected:
    """Inspect a staged distribution according to its file name."""
    if dist.is_wheel:
        return _inspect_wheel(file, dist, limits)
    return _inspect_sdist(file, dist, limits)


def _name_version(directory: str, suffix: str) -> tuple[str, Version] | None:
    """``("foo-bar", Version("1.0"))`` from ``foo_bar-1.0{suffix}``, or None."""
    stem = directory.removesuffix(suffix)
    name, sep, version = stem.rpartition("-")
    if not sep or not name:
        return None
    try:
        return normalize(name), Version(version)
    except InvalidVersion:
        return None


def _matches(found: tuple[str, Version] | None, dist: DistributionFile) -> bool:
    return found is not None and found == (dist.name, dist.version)


def _inspect_wheel(file: BinaryIO, dist: DistributionFile, limits: ArchiveLimits) -> Inspected:
    with ZipArchive(file, limits, what="wheel") as wheel:
        names = wheel.names
        dist_infos = {
            name.split("/", 1)[0]
            for name in names
            if "/" in name and name.split("/", 1)[0].endswith(".dist-info")
        }
        if len(dist_infos) != 1:
            raise PackageInvalid(
                f"the wheel holds {len(dist_infos)} .dist-info directories; a wheel has exactly "
                f"one, named {dist.filename.split('-')[0]}-{dist.version}.dist-info"
            )
        dist_info = dist_infos.pop()
        if not _matches(_name_version(dist_info, ".dist-info"), dist):
            raise PackageInvalid(
                f"the wheel's {dist_info} directory does not match its file name {dist.filename}"
            )
        present = set(names)
        missing = [f for f in WHEEL_REQUIRED if f"{dist_info}/{f}" not in present]
        if missing:
            raise PackageInvalid(f"the wheel has no {', '.join(missing)} in {dist_info}")
        data = wheel.read(f"{dist_info}/METADATA")
    return Inspected(parse_core_metadata(data, f"{dist_info}/METADATA"), data)


def _inspect_sdist(file: BinaryIO, dist: DistributionFile, limits: ArchiveLimits) -> Inspected:
    def want(name: str) -> bool:
        return name.count("/") == 1 and name.endswith("/PKG-INFO")

    contents = TarArchive.scan(file, limits, want, what="sdist")
    tops = contents.top_levels
    top = tops.pop() if len(tops) == 1 else None
    if top is None or not _matches(_name_version(top, ""), dist):
        expected = dist.filename.removesuffix(".tar.gz")
        raise PackageInvalid(
            f"every file of the sdist must sit under one directory named {expected}/ (PEP 625)"
        )
    data = contents.files.get(f"{top}/PKG-INFO")
    if data is None:
        raise PackageInvalid(f"the sdist has no {top}/PKG-INFO")
    return Inspected(parse_core_metadata(data, f"{top}/PKG-INFO"), None)
