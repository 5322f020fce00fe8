"""SPDX license expressions as policy facts: ``"MIT OR Apache-2.0"`` -> ``["Apache-2.0", "MIT"]``.

Policies match single license ids (``input.artifact.sbom.licenses``), so an
expression is validated against the SPDX list (through :mod:`packaging`,
which ships it), canonicalised and split into its ids; exceptions (``WITH
Classpath-exception-2.0``) are kept attached to the id they modify, beside the
bare id, so a rule on ``GPL-2.0-only`` still sees it. An ``OR`` is not a
choice made here: every alternative is listed, and the policy decides. Free text
that is not an SPDX expression yields no ids: guessing would let a policy
allow or refuse on a misreading.
"""

from __future__ import annotations

import re

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

_OPERATORS = frozenset({"AND", "OR", "(", ")"})
_TOKEN = re.compile(r"\(|\)|[^\s()]+")

# Trove classifiers that name exactly one SPDX license (PyPI packages without
# License-Expression declare their license this way).
CLASSIFIERS: dict[str, str] = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: MIT No Attribution License (MIT-0)": "MIT-0",
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: BSD License": "BSD-3-Clause",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)": (
        "GPL-2.0-or-later"
    ),
    "License :: OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)": (
        "GPL-3.0-or-later"
    ),
    "License :: OSI Approved :: GNU Affero General Public License v3": "AGPL-3.0-only",
    "License :: OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)": (
        "AGPL-3.0-or-later"
    ),
    "License :: OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)": (
        "LGPL-2.0-or-later"
    ),
    "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)": (
        "LGPL-3.0-or-later"
    ),
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "License :: OSI Approved :: zlib/libpng License": "Zlib",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
}


def spdx_expression(text: str | None) -> str | None:
    """The canonical SPDX expression ``text`` is, or ``None`` when it is not one."""
    if not text or len(text) > 1024:
        return None
    try:
        return str(canonicalize_license_expression(text.strip()))
    except (InvalidLicenseExpression, ValueError):
        return None


def license_ids(expression: str | None) -> list[str]:
    """The sorted, distinct license ids of a canonical SPDX expression."""
    if not expression:
        return []
    ids: set[str] = set()
    tokens = [token for token in _TOKEN.findall(expression) if token not in _OPERATORS]
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if index + 2 < len(tokens) and tokens[index + 1] == "WITH":
            ids.update((token, f"{token} WITH {tokens[index + 2]}"))
            index += 3
            continue
        ids.add(token)
        index += 1
    return sorted(ids)


def classifier_ids(classifiers: list[str]) -> list[str]:
    """SPDX ids of the license classifiers we can map exactly."""
    return sorted({CLASSIFIERS[c] for c in classifiers if c in CLASSIFIERS})
