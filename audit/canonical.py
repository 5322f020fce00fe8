"""RFC 8785 (JSON Canonicalization Scheme) text for events, fast.

The reference implementation is the ``rfc8785`` package. It is pure Python and
costs ~100 µs for a typical decided event (whose ``details`` hold the whole
policy input), which alone would cap a writer near 10,000 events/s. For the
values events actually carry (string keys, strings, integers, booleans, null)
the C ``json`` encoder with sorted keys and compact separators produces the
identical bytes, so we use it when that identity provably holds and fall back to
``rfc8785`` otherwise:

* no floats (their ES6 formatting differs from Python's ``repr``),
* integers within ±(2**53 - 1) (RFC 8785 / I-JSON range; ``rfc8785`` rejects
  others, and so do we),
* no character at or above U+D800 anywhere in the text (Python sorts keys by
  code point, RFC 8785 by UTF-16 code unit; the two orders agree below U+D800,
  and lone surrogates are only possible above it).

``tests/audit/test_canonical.py`` checks the identity against ``rfc8785`` with
generated values. Keys that are not strings are rejected by ``rfc8785`` but
coerced by ``json``; callers must pass string keys (the registry always does).

The event itself is assembled by concatenation: the nested JSON values are
stored as canonical text, and the top-level keys are fixed ASCII names, so the
canonical JSON of the whole event is the stored pieces in key order. Hashing
and exporting therefore never re-encode ``details``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import json.encoder
import re
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

import rfc8785

from audit.errors import EventEncodingError

MAX_SAFE_INTEGER = 2**53 - 1
_HIGH_CHARS = re.compile("[\ud800-\U0010ffff]")


class _NeedsReference(Exception):
    """Internal: the fast encoder cannot vouch for this value."""


def _reject_float(text: str) -> float:
    raise _NeedsReference(text)


def _checked_int(text: str) -> int:
    value = int(text)
    if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return value
    raise _NeedsReference(text)


def _encoder() -> Callable[[object], str]:
    """The C encoder with sorted keys and compact separators, built once.

    ``json.dumps`` with keyword arguments builds a new encoder per call, which
    costs more than encoding a small object.
    """
    python = json.JSONEncoder(
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has the C accelerator
        return python.encode
    encode = make(None, python.default, encode_basestring, None, ":", ",", True, False, False)
    return lambda value: "".join(encode(value, 0))


_encode = _encoder()
_decode = json.JSONDecoder(parse_float=_reject_float, parse_int=_checked_int).decode


def _fast(value: object) -> tuple[str, Any]:
    text = _encode(value)
    if not text.isascii() and _HIGH_CHARS.search(text):
        raise _NeedsReference("characters at or above U+D800")
    return text, _decode(text)


def _reference(value: object) -> tuple[str, Any]:
    try:
        text = rfc8785.dumps(value).decode("utf-8")  # type: ignore[arg-type]
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise EventEncodingError(f"value is not representable as RFC 8785 JSON: {exc}") from exc
    return text, json.loads(text)


def canonicalize(value: object) -> tuple[str, Any]:
    """Return ``(canonical JSON text, the value as read back from that text)``.

    The second element is what a reader of the database will see, so the
    sealed :class:`audit.events.Event` carries it rather than the caller's
    (possibly mutable, possibly tuple-bearing) objects.
    """
    try:
        return _fast(value)
    except (_NeedsReference, TypeError, ValueError, RecursionError):
        return _reference(value)


def canonical_json(value: object) -> str:
    """RFC 8785 text of ``value``; raises :class:`EventEncodingError`."""
    return canonicalize(value)[0]


@functools.lru_cache(maxsize=4096)
def canonical_string(value: str) -> str:
    """RFC 8785 text of a short string such as an action or outcome (cached)."""
    if not isinstance(value, str):
        raise EventEncodingError(f"expected a string, got {type(value).__name__}")
    return canonical_json(value)


def quote(value: str) -> str:
    """JSON string literal without validation; for hashing stored text only.

    Equal to :func:`canonical_string` for every valid string; a lone surrogate
    passes through and makes the later UTF-8 encoding fail, which the callers
    treat as a mismatch.
    """
    result: str = encode_basestring(value)
    return result


def event_body(
    *,
    seq: int,
    time: str,
    actor: str,
    action: str,
    resource: str,
    decision: str,
    outcome: str,
    details: str,
    prev_hash: str,
    hash: str | None = None,
) -> str:
    """Canonical JSON of an event from canonical pieces.

    ``actor``, ``resource``, ``decision`` and ``details`` are canonical JSON
    texts; the others are plain values. With ``hash`` the result is the export
    line; without it, the text the hash is computed over.
    """
    parts = [
        '{"action":',
        quote(action),
        ',"actor":',
        actor,
        ',"decision":',
        decision,
        ',"details":',
        details,
    ]
    if hash is not None:
        parts += [',"hash":', quote(hash)]
    parts += [
        ',"outcome":',
        quote(outcome),
        ',"prev_hash":',
        quote(prev_hash),
        ',"resource":',
        resource,
        ',"seq":',
        str(seq),
        ',"time":',
        quote(time),
        "}",
    ]
    return "".join(parts)


def sha256_hex(text: str) -> str:
    """SHA-256 of the UTF-8 bytes of ``text``, lower-case hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
