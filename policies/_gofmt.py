"""Private: Go's ``fmt.Sprintf`` and ``strconv.Quote``, for the wasm engine's ``sprintf``.

Not public API. OPA implements Rego's ``sprintf`` by handing Go's
``fmt.Sprintf`` the format and one Go value per argument (``int64``,
``*big.Int``, ``float64`` or ``string``; see :mod:`policies._wasm_builtins`).
A policy's deny reasons are ``sprintf`` output, and the audit log records
them, so the wasm engine must print exactly what OPA prints: this module is a
line-by-line port of Go's ``fmt/print.go``, ``fmt/format.go`` and the parts of
``strconv`` they call (Go 1.26), including Go's own error renderings such as
``%!d(string=x)``, ``%!s(MISSING)`` and ``%!(EXTRA int64=1)``.

What the port does not reproduce raises :class:`Unsupported`, which the engine
turns into a fail-closed deny rather than print something OPA would not:
hexadecimal and binary float formats (``%x`` ``%X`` ``%b`` on a float),
``%p``/``%w`` on a big integer, and quoting a character that Python's Unicode
tables do not know (Go's may be newer, and would decide printability
differently).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

MAX_RUNE = 0x10FFFF
RUNE_ERROR = 0xFFFD
_UINT64 = 1 << 64
_TOO_LARGE = 1_000_000  # fmt's limit on a width or precision
_FLAGS = {"#": "sharp", "0": "zero", "+": "plus", "-": "minus", " ": "space"}


class Unsupported(Exception):
    """Formatting Go would do that this port does not reproduce exactly."""


@dataclass(frozen=True)
class BigInt:
    """A Go ``*big.Int``: OPA's operand for an integer outside the int64 range."""

    value: int


GoValue = int | float | str | BigInt


def type_name(value: GoValue) -> str:
    """``reflect.TypeOf(value).String()`` for the operand types OPA produces."""
    if isinstance(value, BigInt):
        return "*big.Int"
    if isinstance(value, bool):
        raise Unsupported("a Go bool operand")  # OPA renders booleans as strings
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return "string"


def sprintf(format_: str, args: Sequence[GoValue]) -> str:
    """``fmt.Sprintf(format_, args...)``."""
    printer = _Printer(args)
    printer.do_printf(format_)
    return "".join(printer.out)


# --- strconv -----------------------------------------------------------------


def is_print(rune: int) -> bool:
    """``strconv.IsPrint``: letters, marks, numbers, punctuation, symbols and ASCII space."""
    if rune < 0x80:
        return 0x20 <= rune < 0x7F
    if 0xD800 <= rune <= 0xDFFF or rune > MAX_RUNE:
        return False
    category = unicodedata.category(chr(rune))
    if category == "Cn":
        raise Unsupported(
            f"U+{rune:04X} is unassigned in Python's Unicode {unicodedata.unidata_version};"
            " Go's tables may differ"
        )
    return category[0] in "LMNPS"


_ESCAPES = {0x07: r"\a", 0x08: r"\b", 0x0C: r"\f", 0x0A: r"\n", 0x0D: r"\r", 0x09: r"\t"}
_ESCAPES[0x0B] = r"\v"


def _escaped_rune(rune: int, quote: str, ascii_only: bool) -> str:
    """``strconv.appendEscapedRune`` (graphicOnly false)."""
    if rune in (ord(quote), ord("\\")):
        return "\\" + chr(rune)
    if ascii_only:
        if rune < 0x80 and is_print(rune):
            return chr(rune)
    elif is_print(rune):
        return chr(rune)
    if rune in _ESCAPES:
        return _ESCAPES[rune]
    if rune < 0x20 or rune == 0x7F:
        return f"\\x{rune:02x}"
    if 0xD800 <= rune <= 0xDFFF or rune > MAX_RUNE:
        rune = RUNE_ERROR
    if rune < 0x10000:
        return f"\\u{rune:04x}"
    return f"\\U{rune:08x}"


def quote(text: str, *, ascii_only: bool = False) -> str:
    """``strconv.Quote`` (or ``QuoteToASCII``): how Rego prints a string inside a value."""
    return '"' + "".join(_escaped_rune(ord(char), '"', ascii_only) for char in text) + '"'


def quote_rune(rune: int, *, ascii_only: bool = False) -> str:
    """``strconv.QuoteRune`` (or ``QuoteRuneToASCII``)."""
    if 0xD800 <= rune <= 0xDFFF or not 0 <= rune <= MAX_RUNE:
        rune = RUNE_ERROR
    return "'" + _escaped_rune(rune, "'", ascii_only) + "'"


def can_backquote(text: str) -> bool:
    """``strconv.CanBackquote``."""
    for char in text:
        rune = ord(char)
        if rune >= 0x80:
            if rune == 0xFEFF:
                return False
            continue
        if (rune < 0x20 and char != "\t") or char == "`" or rune == 0x7F:
            return False
    return True


def format_float(value: float, verb: str, precision: int) -> str:
    """``strconv.FormatFloat(value, verb, precision, 64)`` for e, E, f, g and G.

    A negative precision means the shortest text that reads back as
    ``value``; Python's ``repr`` finds the same digits Go's does.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    magnitude = abs(value)
    if precision >= 0:
        return sign + format(magnitude, f".{precision}{verb}")
    if verb not in "gG":
        raise Unsupported(f"shortest %{verb}")
    digits, point = _shortest_digits(magnitude)
    exponent = point - 1
    if exponent < -4 or exponent >= 6:  # Go: eprec is 6 for the shortest form
        return sign + _fmt_e(digits, point, len(digits) - 1, "e" if verb == "g" else "E")
    return sign + _fmt_f(digits, point, max(len(digits) - point, 0))


def _shortest_digits(magnitude: float) -> tuple[str, int]:
    """The shortest decimal digits of ``magnitude`` and where the point goes (0.DIGITS x 10^p)."""
    mantissa, _, exponent = repr(magnitude).partition("e")
    whole, _, fraction = mantissa.partition(".")
    everything = whole + fraction
    significant = everything.lstrip("0")
    point = len(whole) + int(exponent or 0) - (len(everything) - len(significant))
    significant = significant.rstrip("0")
    return (significant, point) if significant else ("", 0)


def _fmt_e(digits: str, point: int, precision: int, letter: str) -> str:
    """``strconv.fmtE``: d.ddddde±dd."""
    text = digits[0] if digits else "0"
    if precision > 0:
        shown = digits[1 : min(len(digits), precision + 1)]
        text += "." + shown + "0" * (precision - len(shown))
    exponent = point - 1 if digits else 0
    return f"{text}{letter}{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def _fmt_f(digits: str, point: int, precision: int) -> str:
    """``strconv.fmtF``: ddd.ddd."""
    text = digits[:point] + "0" * max(point - len(digits), 0) if point > 0 else "0"
    if precision > 0:
        fraction = (
            digits[point + i] if 0 <= point + i < len(digits) else "0" for i in range(precision)
        )
        text += "." + "".join(fraction)
    return text


def _to_base(number: int, base: int, upper: bool) -> str:
    if base == 10:
        return str(number)
    text = format(number, {2: "b", 8: "o", 16: "x"}[base])
    return text.upper() if upper else text


# --- fmt ---------------------------------------------------------------------


class _Printer:
    """Go's ``pp`` and ``fmt`` structs: one Sprintf call's flags and output."""

    def __init__(self, args: Sequence[GoValue]) -> None:
        self.args = args
        self.out: list[str] = []
        self.arg: GoValue = ""
        self.reordered = False
        self.good_arg_num = True
        self.clear_flags()

    def clear_flags(self) -> None:
        self.wid = self.prec = 0
        self.wid_present = self.prec_present = False
        self.minus = self.plus = self.sharp = self.space = self.zero = False
        self.plus_v = self.sharp_v = False

    # -- doPrintf -------------------------------------------------------------

    def do_printf(self, format_: str) -> None:
        args, end = self.args, len(format_)
        arg_num, after_index, i = 0, False, 0
        while i < end:
            self.good_arg_num = True
            last = i
            while i < end and format_[i] != "%":
                i += 1
            if i > last:
                self.out.append(format_[last:i])
            if i >= end:
                break
            i += 1
            self.clear_flags()
            simple = False
            while i < end:
                char = format_[i]
                if char in _FLAGS:
                    setattr(self, _FLAGS[char], True)
                else:
                    if "a" <= char <= "z" and arg_num < len(args):
                        if char in "vw":
                            self._verb_v()
                        self.print_arg(args[arg_num], char)
                        arg_num += 1
                        i += 1
                        simple = True
                    break
                i += 1
            if simple:
                continue

            arg_num, i, after_index = self._arg_number(arg_num, format_, i)
            if i < end and format_[i] == "*":
                i += 1
                self.wid, self.wid_present, arg_num = self._int_from_arg(arg_num)
                if not self.wid_present:
                    self.out.append("%!(BADWIDTH)")
                if self.wid < 0:
                    self.wid, self.minus, self.zero = -self.wid, True, False
                after_index = False
            else:
                self.wid, self.wid_present, i = _parsenum(format_, i, end)
                if after_index and self.wid_present:
                    self.good_arg_num = False

            if i + 1 < end and format_[i] == ".":
                i += 1
                if after_index:
                    self.good_arg_num = False
                arg_num, i, after_index = self._arg_number(arg_num, format_, i)
                if i < end and format_[i] == "*":
                    i += 1
                    self.prec, self.prec_present, arg_num = self._int_from_arg(arg_num)
                    if self.prec < 0:
                        self.prec, self.prec_present = 0, False
                    if not self.prec_present:
                        self.out.append("%!(BADPREC)")
                    after_index = False
                else:
                    self.prec, self.prec_present, i = _parsenum(format_, i, end)
                    if not self.prec_present:
                        self.prec, self.prec_present = 0, True

            if not after_index:
                arg_num, i, after_index = self._arg_number(arg_num, format_, i)
            if i >= end:
                self.out.append("%!(NOVERB)")
                break
            verb = format_[i]
            i += 1
            if verb == "%":
                self.out.append("%")
            elif not self.good_arg_num:
                self.out.append(f"%!{verb}(BADINDEX)")
            elif arg_num >= len(args):
                self.out.append(f"%!{verb}(MISSING)")
            else:
                if verb in "vw":
                    self._verb_v()
                self.print_arg(args[arg_num], verb)
                arg_num += 1

        if not self.reordered and arg_num < len(args):
            self.clear_flags()
            self.out.append("%!(EXTRA ")
            for index, arg in enumerate(args[arg_num:]):
                if index:
                    self.out.append(", ")
                self.out.append(type_name(arg) + "=")
                self.print_arg(arg, "v")
            self.out.append(")")

    def _verb_v(self) -> None:
        """%v and %w take # and + as Go-syntax and field-name requests, not flags."""
        self.sharp_v, self.sharp = self.sharp, False
        self.plus_v, self.plus = self.plus, False

    def _arg_number(self, arg_num: int, format_: str, i: int) -> tuple[int, int, bool]:
        if len(format_) <= i or format_[i] != "[":
            return arg_num, i, False
        self.reordered = True
        index, width, ok = _parse_arg_number(format_[i:])
        if ok and 0 <= index < len(self.args):
            return index, i + width, True
        self.good_arg_num = False
        return arg_num, i + width, ok

    def _int_from_arg(self, arg_num: int) -> tuple[int, bool, int]:
        number, is_int = 0, False
        if arg_num < len(self.args):
            arg = self.args[arg_num]
            if type(arg) is int:
                number, is_int = arg, True
            arg_num += 1
            if not -_TOO_LARGE <= number <= _TOO_LARGE:
                number, is_int = 0, False
        return number, is_int, arg_num

    # -- printArg -------------------------------------------------------------

    def print_arg(self, arg: GoValue, verb: str) -> None:
        self.arg = arg
        if verb == "T":
            self.fmt_s(type_name(arg))
            return
        if isinstance(arg, BigInt):
            if verb in "pw":  # Go prints the pointer, or the struct behind it
                raise Unsupported(f"%{verb} of a big integer")
            self._big_int(arg.value, verb)
        elif verb == "p":
            self.bad_verb(verb)
        elif isinstance(arg, bool):
            raise Unsupported("a Go bool operand")
        elif isinstance(arg, int):
            self._integer(arg, verb)
        elif isinstance(arg, float):
            self._float(arg, verb)
        else:
            self._string(arg, verb)

    def bad_verb(self, verb: str) -> None:
        """``%!d(string=x)``: the operand printed with %v, under the same flags."""
        self.out.append(f"%!{verb}({type_name(self.arg)}=")
        self.print_arg(self.arg, "v")
        self.out.append(")")

    def _integer(self, value: int, verb: str) -> None:
        if verb in "vd":
            self.fmt_integer(value, 10, verb, upper=False)
        elif verb == "b":
            self.fmt_integer(value, 2, verb, upper=False)
        elif verb in "oO":
            self.fmt_integer(value, 8, verb, upper=False)
        elif verb in "xX":
            self.fmt_integer(value, 16, verb, upper=verb == "X")
        elif verb == "c":
            self.pad(chr(_valid_rune(value % _UINT64)))
        elif verb == "q":
            rune = value % _UINT64
            self.pad(quote_rune(rune if rune <= MAX_RUNE else RUNE_ERROR, ascii_only=self.plus))
        elif verb == "U":
            self.fmt_unicode(value % _UINT64)
        else:
            self.bad_verb(verb)

    def _float(self, value: float, verb: str) -> None:
        if verb == "v":
            self.fmt_float(value, "g", -1)
        elif verb in "gG":
            self.fmt_float(value, verb, -1)
        elif verb in "feE":
            self.fmt_float(value, verb, 6)
        elif verb == "F":
            self.fmt_float(value, "f", 6)
        elif verb in "bxX":
            raise Unsupported(f"%{verb} of a float")
        else:
            self.bad_verb(verb)

    def _string(self, value: str, verb: str) -> None:
        if verb == "v":
            if self.sharp_v:
                self.fmt_q(value)
            else:
                self.fmt_s(value)
        elif verb == "s":
            self.fmt_s(value)
        elif verb in "xX":
            self.fmt_sx(value.encode("utf-8"), upper=verb == "X")
        elif verb == "q":
            self.fmt_q(value)
        else:
            self.bad_verb(verb)

    def _big_int(self, value: int, verb: str) -> None:
        """``(*big.Int).Format``: big integers format themselves."""
        base = {"b": 2, "o": 8, "O": 8, "d": 10, "s": 10, "v": 10, "x": 16, "X": 16}.get(verb)
        if base is None:
            self.out.append(f"%!{verb}(big.Int={value})")
            return
        plus, sharp = self.plus or self.plus_v, self.sharp or self.sharp_v
        sign = "-" if value < 0 else "+" if plus else " " if self.space else ""
        prefix = {"b": "0b", "o": "0", "x": "0x", "X": "0X"}.get(verb, "") if sharp else ""
        if verb == "O":
            prefix = "0o"
        digits = _to_base(abs(value), base, upper=verb == "X")
        left = zeros = right = 0
        if self.prec_present:
            if len(digits) < self.prec:
                zeros = self.prec - len(digits)
            elif digits == "0" and self.prec == 0:
                return
        length = len(sign) + len(prefix) + zeros + len(digits)
        if self.wid_present and length < self.wid:
            extra = self.wid - length
            if self.minus:
                right = extra
            elif self.zero and not self.prec_present:
                zeros = extra
            else:
                left = extra
        self.out.append(" " * left + sign + prefix + "0" * zeros + digits + " " * right)

    # -- fmt ------------------------------------------------------------------

    def write_padding(self, count: int) -> None:
        if count > 0:
            self.out.append(("0" if self.zero and not self.minus else " ") * count)

    def pad(self, text: str) -> None:
        if not self.wid_present or self.wid == 0:
            self.out.append(text)
            return
        width = self.wid - len(text)
        if self.minus:
            self.out.append(text)
            self.write_padding(width)
        else:
            self.write_padding(width)
            self.out.append(text)

    def fmt_integer(self, value: int, base: int, verb: str, *, upper: bool) -> None:
        negative = value < 0
        magnitude = -value if negative else value
        precision = 0
        if self.prec_present:
            precision = self.prec
            if precision == 0 and magnitude == 0:
                zero, self.zero = self.zero, False
                self.write_padding(self.wid)
                self.zero = zero
                return
        elif self.zero and not self.minus and self.wid_present:
            precision = self.wid
            if negative or self.plus or self.space:
                precision -= 1
        text = _to_base(magnitude, base, upper).rjust(precision, "0")
        if self.sharp:
            if base == 2:
                text = "0b" + text
            elif base == 8 and text[0] != "0":
                text = "0" + text
            elif base == 16:
                text = ("0X" if upper else "0x") + text
        if verb == "O":
            text = "0o" + text
        if negative:
            text = "-" + text
        elif self.plus:
            text = "+" + text
        elif self.space:
            text = " " + text
        zero, self.zero = self.zero, False
        self.pad(text)
        self.zero = zero

    def fmt_unicode(self, value: int) -> None:
        precision = self.prec if self.prec_present and self.prec > 4 else 4
        text = "U+" + format(value, "X").rjust(precision, "0")
        if self.sharp and value <= MAX_RUNE and is_print(value):
            text += f" '{chr(value)}'"
        zero, self.zero = self.zero, False
        self.pad(text)
        self.zero = zero

    def truncate(self, text: str) -> str:
        return text[: self.prec] if self.prec_present else text

    def fmt_s(self, text: str) -> None:
        self.pad(self.truncate(text))

    def fmt_q(self, text: str) -> None:
        text = self.truncate(text)
        if self.sharp and can_backquote(text):
            self.pad("`" + text + "`")
        else:
            self.pad(quote(text, ascii_only=self.plus))

    def fmt_sx(self, data: bytes, *, upper: bool) -> None:
        """``fmtSbx``: a string as the hexadecimal encoding of its bytes."""
        length = min(len(data), self.prec) if self.prec_present else len(data)
        width = 2 * length
        if width <= 0:
            if self.wid_present:
                self.write_padding(self.wid)
            return
        if self.space:
            if self.sharp:
                width *= 2
            width += length - 1
        elif self.sharp:
            width += 2
        if self.wid_present and self.wid > width and not self.minus:
            self.write_padding(self.wid - width)
        prefix = "0X" if upper else "0x"
        pieces = [format(byte, "02X" if upper else "02x") for byte in data[:length]]
        if self.space:
            text = " ".join(prefix + piece if self.sharp else piece for piece in pieces)
        else:
            text = (prefix if self.sharp else "") + "".join(pieces)
        self.out.append(text)
        if self.wid_present and self.wid > width and self.minus:
            self.write_padding(self.wid - width)

    def fmt_float(self, value: float, verb: str, precision: int) -> None:
        if self.prec_present:
            precision = self.prec
        num = format_float(value, verb, precision)
        if num[0] not in "+-":
            num = "+" + num
        if self.space and num[0] == "+" and not self.plus:
            num = " " + num[1:]
        if num[1] in "IN":
            zero, self.zero = self.zero, False
            if num[1] == "N" and not self.space and not self.plus:
                num = num[1:]
            self.pad(num)
            self.zero = zero
            return
        if self.sharp:
            num = _sharp_float(num, verb, precision)
        if self.plus or num[0] != "+":
            if self.zero and not self.minus and self.wid_present and self.wid > len(num):
                self.out.append(num[0])
                self.write_padding(self.wid - len(num))
                self.out.append(num[1:])
                return
            self.pad(num)
            return
        self.pad(num[1:])


def _sharp_float(num: str, verb: str, precision: int) -> str:
    """%#g and friends: keep the decimal point and the trailing zeros (Go's fmtFloat)."""
    digits = (6 if precision == -1 else precision) if verb in "vgGx" else 0
    tail = ""
    has_point = saw_nonzero = False
    i = 1
    while i < len(num):
        char = num[i]
        if char == ".":
            has_point = True
        elif char in "pP" or (char in "eE" and verb not in "xX"):
            tail, num = num[i:], num[:i]
            break
        else:
            if char != "0":
                saw_nonzero = True
            if saw_nonzero:
                digits -= 1
        i += 1
    if not has_point:
        if len(num) == 2 and num[1] == "0":
            digits -= 1
        num += "."
    return num + "0" * max(digits, 0) + tail


def _valid_rune(rune: int) -> int:
    """``utf8.AppendRune`` writes U+FFFD for what is not a Unicode scalar value."""
    if rune > MAX_RUNE or 0xD800 <= rune <= 0xDFFF:
        return RUNE_ERROR
    return rune


def _parsenum(text: str, start: int, end: int) -> tuple[int, bool, int]:
    """fmt's ``parsenum``: a width or precision; an absurdly long one swallows the format."""
    if start >= end:
        return 0, False, end
    number, found, i = 0, False, start
    while i < end and "0" <= text[i] <= "9":
        if not -_TOO_LARGE <= number <= _TOO_LARGE:
            return 0, False, end
        number = number * 10 + ord(text[i]) - ord("0")
        found = True
        i += 1
    return number, found, i


def _parse_arg_number(text: str) -> tuple[int, int, bool]:
    """``[n]``: the zero-based argument index, the characters consumed, and whether it parsed."""
    if len(text) < 3:
        return 0, 1, False
    for i in range(1, len(text)):
        if text[i] == "]":
            width, ok, after = _parsenum(text, 1, i)
            if not ok or after != i:
                return 0, i + 1, False
            return width - 1, i + 1, True
    return 0, 1, False
