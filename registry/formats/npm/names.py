"""npm package names, versions and dist-tags.

Names follow ``validate-npm-package-name`` for new packages: at most 214
characters, lower case, URL-safe, not starting with ``.`` or ``_``, optionally
scoped (``@scope/name``). Versions are SemVer 2.0 exactly as npm's registry
stores them (``semver.clean`` already ran in the client). A dist-tag must not
itself parse as a version or range, or ``npm install pkg@tag`` would be
ambiguous.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from registry.packages import PackageInvalid

MAX_NAME = 214
_PART = r"[a-z0-9~-][a-z0-9._~-]*"
_NAME = re.compile(rf"^(?:@({_PART})/)?({_PART})$")
# The SemVer 2.0 grammar (semver.org), no leading "v" or "=".
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,127}$")
_RANGE_LIKE = re.compile(r"^[v=<>~^\d*xX. |-]+$")


def decode_name(raw: str) -> str:
    """The package name of a URL path segment (``@scope%2fname`` or ``@scope/name``)."""
    return unquote(raw) if "%" in raw else raw


def check_name(name: str) -> str:
    if len(name) > MAX_NAME or not _NAME.match(name):
        raise PackageInvalid(
            f"{name!r} is not a valid package name: lower case letters, digits, '-', '.', '_' "
            "and '~', not starting with '.' or '_', at most 214 characters, optionally "
            "@scope/name"
        )
    return name


def basename(name: str) -> str:
    """``name`` without its scope: tarballs are ``{basename}-{version}.tgz``."""
    return name.rsplit("/", 1)[-1]


def tarball_filename(name: str, version: str) -> str:
    return f"{basename(name)}-{version}.tgz"


def is_version(text: str) -> bool:
    return bool(_SEMVER.match(text)) and len(text) <= 256


def check_version(text: object) -> str:
    if not isinstance(text, str) or not is_version(text):
        raise PackageInvalid(
            f"{text!r} is not a valid version: npm versions are SemVer 2.0, e.g. 1.2.3 or "
            "2.0.0-beta.1"
        )
    return text


def check_tag(tag: str) -> str:
    if not _TAG.match(tag) or _RANGE_LIKE.match(tag) or is_version(tag):
        raise PackageInvalid(
            f"{tag!r} is not a valid dist-tag: use a name such as latest, next or beta "
            "(letters first; not a version or range)"
        )
    return tag
