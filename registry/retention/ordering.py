"""Version order, for "keep the N most recent versions" by version rather than push time.

Which versions are "most recent" depends on the format's own rules:

* ``pypi``: PEP 440 through :class:`packaging.version.Version` (``1.0rc1`` <
  ``1.0`` < ``1.0.post1``); a version that is not PEP 440 sorts below every
  valid one, by natural order;
* ``oci``: versions are manifest digests, which have no order; push time is
  used instead (:func:`orders_by_version` says so);
* every other format (generic, npm, maven, helm, ...): semver-ish first
  (``v1.2.3-rc.1+build``; a pre-release sorts below its release, pre-release
  identifiers compare numerically when both are numbers, as SemVer 2.0 says),
  and what is not semver-ish by natural order (``build-9`` < ``build-10``),
  below every semver-ish version.

Keys are tuples of comparable parts, so ``sorted(..., key=version_key(fmt))``
never compares unlike types.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from packaging.version import InvalidVersion, Version

_SEMVER = re.compile(
    r"^v?(?P<major>\d+)(?:\.(?P<minor>\d+))?(?:\.(?P<patch>\d+))?(?:\.(?P<extra>\d+))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
_CHUNK = re.compile(r"(\d+)")

Key = tuple[Any, ...]

# The first element ranks the kind of key, so different kinds never meet.
_NATURAL, _PARSED = 0, 1


def orders_by_version(fmt: str) -> bool:
    """False for formats whose versions carry no order (OCI digests): use push time."""
    return fmt != "oci"


def natural_key(text: str) -> Key:
    """``build-9`` < ``build-10``: digit runs compare as numbers, the rest as text."""
    parts = _CHUNK.split(text)
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in parts if part)


def semver_key(text: str) -> Key | None:
    """A SemVer-like key, or None when ``text`` is not semver-ish."""
    match = _SEMVER.match(text)
    if match is None:
        return None
    numbers = tuple(int(match.group(name) or 0) for name in ("major", "minor", "patch", "extra"))
    pre = match.group("pre")
    if pre is None:
        return (*numbers, 1, ())  # a release sorts above its pre-releases
    identifiers = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split(".")
    )
    return (*numbers, 0, identifiers)


def pep440_key(text: str) -> Key | None:
    try:
        return (Version(text),)
    except InvalidVersion:
        return None


def version_key(fmt: str) -> Callable[[str], Key]:
    """The sort key for versions of format ``fmt`` (ascending: oldest first)."""
    parse = pep440_key if fmt == "pypi" else semver_key

    def key(text: str) -> Key:
        parsed = parse(text)
        if parsed is None:
            return (_NATURAL, natural_key(text))
        return (_PARSED, parsed)

    return key
