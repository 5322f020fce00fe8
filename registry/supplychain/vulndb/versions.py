"""Each ecosystem's version order, for OSV ``ECOSYSTEM`` and ``SEMVER`` ranges.

PyPI parses with :mod:`packaging` (PEP 440) and compares as a tuple key
(below: packaging's own comparisons cost microseconds each through Python
sentinels, and a range check makes dozens). SemVer 2.0 (npm, Go,
crates.io and every ``SEMVER`` range) is hand-written below as a tuple key:
univers' ``SemverVersion`` took 13 µs per parse and compares through
attrs-generated methods, and Go alone is 60 % of the OSV records the
registry matches; a tuple parses in about 2 µs and compares in C. Maven,
Debian, Alpine, RubyGems, NuGet and Packagist order by their own rules
through univers, whose classes order exactly as those tools do (3-8 µs per
parse). Parses are cached. A version that does not parse is ``None``: such a
component is matched only against the exact version lists OSV records
carry, never guessed into a range.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from packaging.version import InvalidVersion, Version
from univers import versions as univers

SEMVER = "SEMVER"


_LETTERS = {"a": 0, "b": 1, "rc": 2}


def _pep440(text: str) -> Any:
    """PEP 440 order as a tuple of numbers and strings (compared in C).

    The same order as :class:`packaging.version.Version` (whose public parts
    it is built from), whose own comparisons go through Python-level
    infinity sentinels: epoch, release without trailing zeros, pre-release
    (a < b < rc < none; a dev release without one sorts first), post, dev,
    local segments (numbers above strings).
    """
    version = Version(text)
    release = list(version.release)
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    if version.pre is not None:
        pre: tuple[int, ...] = (_LETTERS[version.pre[0]], version.pre[1])
    elif version.post is None and version.dev is not None:
        pre = (-1,)
    else:
        pre = (3,)
    post = (-1,) if version.post is None else (version.post,)
    dev = (1, 0) if version.dev is None else (0, version.dev)
    local: tuple[Any, ...] = (0,)
    if version.local is not None:
        local = (
            1,
            tuple(
                (1, int(part), "") if part.isdigit() else (0, 0, part)
                for part in version.local.split(".")
            ),
        )
    return (version.epoch, tuple(release), pre, post, dev, local)


_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
# A release sorts after every pre-release of it: (1,) > (0, ...).
_RELEASE = (1,)


def _semver(text: str) -> Any:
    """SemVer 2.0 precedence as a tuple: numbers, then pre-release identifiers.

    Numeric identifiers sort numerically and before alphanumeric ones, a
    shorter identifier list before a longer one it prefixes, build metadata
    is ignored (https://semver.org/#spec-item-11).
    """
    found = _SEMVER.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not SemVer")
    major, minor, patch, pre = found.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), _RELEASE)
    identifiers = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split(".")
    )
    return (int(major), int(minor), int(patch), (0, identifiers))


_PARSERS: dict[str, Callable[[str], Any]] = {
    "PyPI": _pep440,
    "npm": _semver,
    "Go": _semver,
    "crates.io": _semver,
    SEMVER: _semver,
    "Maven": univers.MavenVersion,
    "Debian": univers.DebianVersion,
    "Ubuntu": univers.DebianVersion,
    "Alpine": univers.AlpineLinuxVersion,
    "RubyGems": univers.RubygemsVersion,
    "NuGet": univers.NugetVersion,
    "Packagist": univers.ComposerVersion,
}


def supported(ecosystem: str) -> bool:
    return ecosystem in _PARSERS


@lru_cache(maxsize=200_000)
def parse(ecosystem: str, text: str) -> Any | None:
    """A comparable version of ``ecosystem`` (or of SemVer), ``None`` if it does not parse."""
    parser = _PARSERS.get(ecosystem)
    if parser is None or not text:
        return None
    try:
        return parser(text)
    except (InvalidVersion, ValueError, TypeError, AttributeError, IndexError, KeyError):
        return None
    except Exception:  # univers raises its own errors for malformed versions
        return None
