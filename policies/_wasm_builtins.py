"""Private: the builtins OPA's wasm compiler leaves to the host, implemented as OPA does.

Not public API. ``opa build -t wasm`` compiles most builtins into the module
but leaves some to the host: the module's ``builtins`` export names them, and
it calls ``env.opa_builtinN`` with their arguments. The starter policies need
two, ``sprintf`` and ``time.parse_rfc3339_ns``; a bundle needing any other is
refused at load time (:data:`HOST_BUILTINS` lists what exists here).

Arguments arrive as ``opa_value_dump`` text, Rego's own syntax, because
``opa_json_dump`` would turn a set into an array and a non-string object key
into a string, and ``sprintf`` prints those differently. Numbers keep the
text they were written with (``1.0``, ``1e3``), as OPA's Go SDK reads them
back, since ``sprintf`` decides between an integer and a float by that text.

Failures come in two kinds, kept apart on purpose:

- :class:`BuiltinError`: OPA's builtin fails too (a time that does not parse,
  an operand of the wrong type). OPA then treats the call as undefined, in
  its evaluator and in its Go wasm SDK (v1.22.3, ``dispatch`` in
  ``internal/wasm/sdk/internal/wasm/bindings.go``), and so does the engine:
  the host function returns 0, which the compiled code reads as undefined.
- :class:`Unsupported` (from :mod:`policies._gofmt` or the value reader):
  something this implementation does not reproduce exactly. The engine traps,
  and the decision is the fail-closed deny, never a guess at OPA's output.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from functools import cmp_to_key
from types import MappingProxyType
from typing import Any, TypeAlias

from policies import _gofmt
from policies._gofmt import BigInt, GoValue, Unsupported

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class BuiltinError(Exception):
    """The builtin fails in OPA as well; the call is undefined there, and here."""


@dataclass(frozen=True)
class Number:
    """A Rego number with the text it was written in (``1.0`` is not ``1`` to sprintf)."""

    text: str


@dataclass(frozen=True)
class RegoSet:
    """A Rego set, in the order the module dumped it (rendering sorts)."""

    items: tuple[Term, ...]


@dataclass(frozen=True)
class RegoObject:
    """A Rego object; keys may be any value, so a list of pairs and not a dict."""

    items: tuple[tuple[Term, Term], ...]


Term: TypeAlias = bool | str | Number | list["Term"] | RegoSet | RegoObject | None
Builtin = Callable[[Sequence[Term]], Any]


def call(name: str, dumped_args: Sequence[bytes]) -> bytes | None:
    """The JSON of host builtin ``name`` applied to ``opa_value_dump`` texts; ``None`` if undefined.

    Raises :class:`Unsupported` when the answer would not be OPA's.
    """
    builtin = HOST_BUILTINS.get(name)
    if builtin is None:
        raise Unsupported(f"no host implementation of {name}")
    try:
        result = builtin([parse_term(dumped) for dumped in dumped_args])
    except BuiltinError:
        return None
    return json.dumps(result, ensure_ascii=False).encode("utf-8")


# --- reading opa_value_dump ----------------------------------------------------

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_SPACE = re.compile(r"[ \t\r\n]*")
_STRING = json.JSONDecoder()
_LITERALS: tuple[tuple[str, Term], ...] = (
    ("set()", RegoSet(())),
    ("true", True),
    ("false", False),
    ("null", None),
)


def parse_term(dumped: bytes) -> Term:
    """A value from ``opa_value_dump``: JSON plus sets, ``set()`` and non-string keys."""
    try:
        text = dumped.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Unsupported(f"an OPA value that is not UTF-8: {error}") from None
    reader = _TermReader(text)
    term = reader.value()
    reader.space()
    if reader.pos != len(text):
        raise Unsupported(f"unexpected text after an OPA value at {reader.pos}")
    return term


class _TermReader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def space(self) -> None:
        match = _SPACE.match(self.text, self.pos)
        self.pos = match.end() if match else self.pos

    def expect(self, char: str) -> None:
        self.space()
        if not self.text.startswith(char, self.pos):
            raise Unsupported(f"expected {char!r} in an OPA value at {self.pos}")
        self.pos += 1

    def value(self) -> Term:
        self.space()
        text, pos = self.text, self.pos
        char = text[pos : pos + 1]
        if char == '"':
            string, self.pos = _STRING.raw_decode(text, pos)
            if any(0xD800 <= ord(c) <= 0xDFFF for c in string):
                raise Unsupported("a string with a lone surrogate")
            return str(string)
        if char == "[":
            return self.array()
        if char == "{":
            return self.object_or_set()
        for literal, term in _LITERALS:
            if text.startswith(literal, pos):
                self.pos = pos + len(literal)
                return term
        number = _NUMBER.match(text, pos)
        if number is None:
            raise Unsupported(f"cannot read an OPA value at {text[pos : pos + 40]!r}")
        self.pos = number.end()
        return Number(number.group())

    def array(self) -> list[Term]:
        self.expect("[")
        items: list[Term] = []
        if not self.closing("]"):
            items.append(self.value())
            while not self.closing("]"):
                self.expect(",")
                items.append(self.value())
        return items

    def object_or_set(self) -> RegoObject | RegoSet:
        self.expect("{")
        if self.closing("}"):
            return RegoObject(())
        first = self.value()
        self.space()
        if not self.text.startswith(":", self.pos):
            members = [first]
            while not self.closing("}"):
                self.expect(",")
                members.append(self.value())
            return RegoSet(tuple(members))
        self.expect(":")
        pairs = [(first, self.value())]
        while not self.closing("}"):
            self.expect(",")
            key = self.value()
            self.expect(":")
            pairs.append((key, self.value()))
        return RegoObject(tuple(pairs))

    def closing(self, char: str) -> bool:
        self.space()
        if self.text.startswith(char, self.pos):
            self.pos += 1
            return True
        return False


# --- Rego's String() and ordering ----------------------------------------------


def render(term: Term) -> str:
    """``term.String()`` in OPA: what ``sprintf`` prints for anything but numbers and strings."""
    if term is None:
        return "null"
    if term is True or term is False:
        return "true" if term else "false"
    if isinstance(term, str):
        return _gofmt.quote(term)
    if isinstance(term, Number):
        return term.text
    if isinstance(term, list):
        return "[" + ", ".join(map(render, term)) + "]"
    if isinstance(term, RegoSet):
        if not term.items:
            return "set()"
        return "{" + ", ".join(map(render, sorted(term.items, key=_ORDER))) + "}"
    if not term.items:
        return "{}"
    pairs = sorted(term.items, key=lambda pair: _ORDER(pair[0]))
    return "{" + ", ".join(f"{render(key)}: {render(value)}" for key, value in pairs) + "}"


def _rank(term: Term) -> int:
    """Where a type sorts in ``ast.Compare``: null, boolean, number, string, array, object, set."""
    if term is None:
        return 0
    if isinstance(term, bool):
        return 1
    if isinstance(term, Number):
        return 2
    if isinstance(term, str):
        return 3
    if isinstance(term, list):
        return 7
    return 8 if isinstance(term, RegoObject) else 9


def compare(left: Term, right: Term) -> int:
    """``ast.Compare``: the order in which OPA prints set members and object keys."""
    rank, other = _rank(left), _rank(right)
    if rank != other:
        return -1 if rank < other else 1
    if isinstance(left, Number) and isinstance(right, Number):
        return _sign(Fraction(left.text) - Fraction(right.text))
    if isinstance(left, bool) and isinstance(right, bool):
        return (left > right) - (left < right)
    if isinstance(left, str) and isinstance(right, str):
        return (left > right) - (left < right)
    if isinstance(left, list) and isinstance(right, list):
        return _compare_sequences(left, right)
    if isinstance(left, RegoSet) and isinstance(right, RegoSet):
        return _compare_sequences(sorted(left.items, key=_ORDER), sorted(right.items, key=_ORDER))
    if isinstance(left, RegoObject) and isinstance(right, RegoObject):
        mine = sorted(left.items, key=lambda pair: _ORDER(pair[0]))
        theirs = sorted(right.items, key=lambda pair: _ORDER(pair[0]))
        for (key, value), (other_key, other_value) in zip(mine, theirs, strict=False):
            found = compare(key, other_key) or compare(value, other_value)
            if found:
                return found
        return _sign(len(mine) - len(theirs))
    return 0  # two nulls


def _compare_sequences(left: Sequence[Term], right: Sequence[Term]) -> int:
    for mine, theirs in zip(left, right, strict=False):
        found = compare(mine, theirs)
        if found:
            return found
    return _sign(len(left) - len(right))


def _sign(number: Fraction | int) -> int:
    return (number > 0) - (number < 0)


_ORDER = cmp_to_key(compare)


# --- sprintf -------------------------------------------------------------------


def go_operand(term: Term) -> GoValue:
    """The Go value OPA's ``builtinSprintf`` passes to ``fmt.Sprintf`` for ``term``.

    A number written with a point or an exponent is a float64 (or its text,
    if it overflows one); any other number an int64, or a big integer beyond
    int64. A string is itself; every other value is its Rego text.
    """
    if isinstance(term, Number):
        text = term.text
        if any(char in text for char in ".eE"):
            value = float(text)
            return text if math.isinf(value) else value
        number = int(text)
        return number if INT64_MIN <= number <= INT64_MAX else BigInt(number)
    if isinstance(term, str):
        return term
    return render(term)


def _sprintf(args: Sequence[Term]) -> str:
    format_, values = args
    if not isinstance(format_, str):
        raise BuiltinError("sprintf: operand 1 must be a string")
    if not isinstance(values, list):
        raise BuiltinError("sprintf: operand 2 must be an array")
    return _gofmt.sprintf(format_, [go_operand(value) for value in values])


# --- time.parse_rfc3339_ns -------------------------------------------------------


def parse_rfc3339_ns(value: str) -> int:
    """Go's ``time.Parse(time.RFC3339, value).UnixNano()``, within OPA's int64 range.

    A port of Go's general ``time.parse`` for that layout, which accepts a
    little more than RFC 3339 (a one-digit hour, a comma before the fraction,
    offsets up to ``+24:60``) and ignores fraction digits past the ninth.
    Raises :class:`BuiltinError` where Go returns an error.
    """
    if not value.isascii():
        raise BuiltinError(f"cannot parse {value!r} as RFC 3339")
    rest = value
    if len(rest) < 4 or not rest[:4].isdigit():
        raise BuiltinError(f"cannot parse {value!r}: bad year")
    year, rest = int(rest[:4]), rest[4:]
    month, rest = _getnum(_skip(rest, "-"), fixed=True)
    day, rest = _getnum(_skip(rest, "-"), fixed=True)
    hour, rest = _getnum(_skip(rest, "T"), fixed=False)
    minute, rest = _getnum(_skip(rest, ":"), fixed=True)
    second, rest = _getnum(_skip(rest, ":"), fixed=True)
    if not (1 <= month <= 12 and hour < 24 and minute < 60 and second < 60):
        raise BuiltinError(f"cannot parse {value!r}: a field is out of range")
    nanos = 0
    if len(rest) >= 2 and rest[0] in ".," and rest[1].isdigit():
        end = 2
        while end < len(rest) and rest[end].isdigit():
            end += 1
        digits = rest[1 : min(end, 10)]
        nanos, rest = int(digits) * 10 ** (9 - len(digits)), rest[end:]
    offset, rest = _zone_offset(rest, value)
    if rest:
        raise BuiltinError(f"cannot parse {value!r}: extra text {rest!r}")
    if year == 0 or day < 1 or day > _days_in(month, year):
        raise BuiltinError(f"cannot parse {value!r}: day out of range")
    days = date(year, month, day).toordinal() - _EPOCH_ORDINAL
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
    result = seconds * 1_000_000_000 + nanos
    if not INT64_MIN <= result <= INT64_MAX:
        raise BuiltinError("time outside of valid range")
    return result


def _skip(rest: str, literal: str) -> str:
    if not rest.startswith(literal):
        raise BuiltinError(f"expected {literal!r}")
    return rest[len(literal) :]


def _getnum(rest: str, *, fixed: bool) -> tuple[int, str]:
    """Go's ``getnum``: two digits, or one when not ``fixed``."""
    if not rest[:1].isdigit():
        raise BuiltinError("expected a digit")
    if not rest[1:2].isdigit():
        if fixed:
            raise BuiltinError("expected two digits")
        return int(rest[0]), rest[1:]
    return int(rest[:2]), rest[2:]


def _zone_offset(rest: str, value: str) -> tuple[int, str]:
    """``Z``, or ``±hh:mm`` (Go allows up to 24 hours and 60 minutes); seconds east of UTC."""
    if rest.startswith("Z"):
        return 0, rest[1:]
    if len(rest) < 6 or rest[3] != ":":
        raise BuiltinError(f"cannot parse {value!r}: bad time zone")
    sign, hours, minutes = rest[0], rest[1:3], rest[4:6]
    if not (hours.isdigit() and minutes.isdigit()) or sign not in "+-":
        raise BuiltinError(f"cannot parse {value!r}: bad time zone")
    if int(hours) > 24 or int(minutes) > 60:
        raise BuiltinError(f"cannot parse {value!r}: time zone offset out of range")
    offset = (int(hours) * 60 + int(minutes)) * 60
    return (-offset if sign == "-" else offset), rest[6:]


def _days_in(month: int, year: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _parse_rfc3339_ns(args: Sequence[Term]) -> int:
    (value,) = args
    if not isinstance(value, str):
        raise BuiltinError("time.parse_rfc3339_ns: operand 1 must be a string")
    return parse_rfc3339_ns(value)


HOST_BUILTINS: Mapping[str, Builtin] = MappingProxyType(
    {"sprintf": _sprintf, "time.parse_rfc3339_ns": _parse_rfc3339_ns}
)
