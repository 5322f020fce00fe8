"""Python package names, versions and distribution file names.

PEP 503 normalises project names (``Foo.Bar_baz`` -> ``foo-bar-baz``); the
registry stores and looks up the normalised form and redirects any other
spelling to it. Versions are PEP 440 and stored in their normalised form
(``1.0.0a1``), so ``1.0`` and ``1.0.0`` stay distinct releases as on PyPI.
File names follow the wheel spec and PEP 625 (``{name}-{version}.tar.gz``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from registry.packages import PackageInvalid

WHEEL = "bdist_wheel"
SDIST = "sdist"
FILETYPES = (WHEEL, SDIST)
MAX_FILENAME = 255
_PROJECT_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*$")


def normalize(name: str) -> str:
    """The PEP 503 form of a project name."""
    return str(canonicalize_name(name))


def is_valid_project_name(name: str) -> bool:
    return bool(_PROJECT_NAME.match(name)) and len(name) <= 200


def check_project_name(name: str) -> str:
    """``name`` normalised; refuses a name PyPI would refuse."""
    if not is_valid_project_name(name):
        raise PackageInvalid(
            f"{name!r} is not a valid project name: use letters, digits, '.', '_' and '-', "
            "starting and ending with a letter or digit (PEP 508)"
        )
    return normalize(name)


def parse_version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise PackageInvalid(
            f"{text!r} is not a valid version (PEP 440), e.g. 1.0, 2.1.3, 1.0rc1, 1.0.post1"
        ) from None


@dataclass(frozen=True)
class DistributionFile:
    """What a distribution's file name says about it."""

    filename: str
    filetype: str
    name: str  # normalised
    version: Version

    @property
    def is_wheel(self) -> bool:
        return self.filetype == WHEEL


def parse_filename(filename: str) -> DistributionFile:
    """Recognise a wheel or an sdist by its name; refuses everything else."""
    if not filename or len(filename) > MAX_FILENAME or not _FILENAME.match(filename):
        raise PackageInvalid(f"{filename!r} is not a valid distribution file name")
    if filename.endswith(".whl"):
        try:
            name, version, _build, _tags = parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion) as error:
            raise PackageInvalid(f"invalid wheel file name {filename!r}: {error}") from None
        return DistributionFile(filename, WHEEL, str(name), version)
    if filename.endswith(".tar.gz"):
        try:
            name, version = parse_sdist_filename(filename)
        except (InvalidSdistFilename, InvalidVersion) as error:
            raise PackageInvalid(f"invalid sdist file name {filename!r}: {error}") from None
        return DistributionFile(filename, SDIST, str(name), version)
    raise PackageInvalid(
        f"{filename!r} is neither a wheel (.whl) nor a source distribution (.tar.gz); "
        "other file types are not accepted (PEP 527, PEP 625)"
    )
