"""jsonschema, imported without ``rfc3987_syntax``, and an IRI format check to replace it.

cyclonedx-python-lib's ``json-validation`` extra installs jsonschema's
``format-nongpl`` checkers, among them ``rfc3987_syntax`` for the ``iri`` and
``iri-reference`` formats (18 places in the CycloneDX 1.6 schema). That module
compiles 39 Lark grammars when it is imported: 1.4 s and about 21 MB in every
server worker, most of the worker's memory beyond the registry itself (R1's
limit is 200 MB while moving a 1 GiB file). jsonschema imports it eagerly if
it can, so it is hidden during that import only, and the two formats are
checked here instead.

The check follows RFC 3987 §3.1 rather than a grammar of its own: an IRI is
syntactically valid when every non-ASCII character is one the IRI grammar
allows (``ucschar``, or ``iprivate`` in the query) and the URI obtained by
percent-encoding those characters is valid, which ``rfc3986_validator`` (the
library jsonschema already uses for ``uri``) decides. Written by hand because
no library offers an IRI check without the grammar compilation; tests compare
its verdicts with ``rfc3987_syntax``.
"""

from __future__ import annotations

import sys
from urllib.parse import quote

from rfc3986_validator import validate_rfc3986

_HIDDEN = "rfc3987_syntax"
_hide = _HIDDEN not in sys.modules
if _hide:
    sys.modules[_HIDDEN] = None  # type: ignore[assignment]  # makes its import fail
try:
    from jsonschema import Draft7Validator, FormatChecker, ValidationError
    from jsonschema.validators import extend
finally:
    if _hide:
        del sys.modules[_HIDDEN]

# RFC 3987 §2.2: the non-ASCII code points an IRI may contain.
_UCSCHAR = (
    (0xA0, 0xD7FF),
    (0xF900, 0xFDCF),
    (0xFDF0, 0xFFEF),
    *((plane, plane + 0xFFFD) for plane in range(0x10000, 0xE0000, 0x10000)),
    (0xE1000, 0xEFFFD),
)
_ASCII = "".join(map(chr, range(0x80)))
_IPRIVATE = ((0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD))


def _within(code: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= code <= high for low, high in ranges)


def _as_uri(iri: str) -> str | None:
    """The URI an IRI maps to (RFC 3987 §3.1), or ``None`` if a character is not allowed."""
    if iri.isascii():
        return iri
    query_start = iri.find("?")
    fragment_start = iri.find("#")
    for index, char in enumerate(iri):
        code = ord(char)
        if code < 0x80 or _within(code, _UCSCHAR):
            continue
        in_query = 0 <= query_start < index and (fragment_start < 0 or index < fragment_start)
        if not (in_query and _within(code, _IPRIVATE)):
            return None
    return quote(iri, safe=_ASCII)  # percent-encodes the non-ASCII characters only


def is_iri(value: object) -> bool:
    """RFC 3987 ``IRI`` (absolute, with a scheme); non-strings pass, as jsonschema expects."""
    if not isinstance(value, str):
        return True
    uri = _as_uri(value)
    return uri is not None and bool(validate_rfc3986(uri, rule="URI"))


def is_iri_reference(value: object) -> bool:
    """RFC 3987 ``IRI-reference`` (absolute or relative)."""
    if not isinstance(value, str):
        return True
    uri = _as_uri(value)
    return uri is not None and bool(validate_rfc3986(uri, rule="URI_reference"))


def format_checker() -> FormatChecker:
    """Draft 7's format checker, with the IRI formats checked by :func:`is_iri` and friends."""
    checker = FormatChecker(Draft7Validator.FORMAT_CHECKER.checkers)
    checker.checks("iri")(is_iri)
    checker.checks("iri-reference")(is_iri_reference)
    return checker


__all__ = ["Draft7Validator", "ValidationError", "extend", "format_checker"]
