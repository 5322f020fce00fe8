"""License text as found in package metadata -> an SPDX expression, when it is one.

Policies match SPDX ids (``input.artifact.sbom.licenses``), so what a cataloger
finds is canonicalised through :mod:`registry.packages.licenses` (the SPDX list
``packaging`` ships). Free text that is no SPDX expression is kept for the
SBOM as a license *name* but yields no ids: guessing would let a policy allow
or refuse on a misreading.
"""

from __future__ import annotations

from registry.packages.licenses import classifier_ids, license_ids, spdx_expression

MAX_NAME = 200


def expression(*candidates: str | None) -> str | None:
    """The first candidate that is an SPDX expression, canonicalised."""
    for candidate in candidates:
        found = spdx_expression(candidate)
        if found:
            return found
    return None


def from_classifiers(classifiers: list[str]) -> str | None:
    """Trove license classifiers as an SPDX expression (several are alternatives)."""
    ids = classifier_ids(classifiers)
    if not ids:
        return None
    return ids[0] if len(ids) == 1 else "(" + " OR ".join(ids) + ")"


def free_text(value: str | None) -> str | None:
    """A license name for the SBOM: the first line of free text, bounded."""
    if not value:
        return None
    first = value.strip().splitlines()[0].strip() if value.strip() else ""
    return first[:MAX_NAME] or None


def ids(value: str | None) -> list[str]:
    """SPDX ids in ``value`` (an expression), else none."""
    return license_ids(spdx_expression(value))
