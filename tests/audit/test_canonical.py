"""The fast canonical encoder must agree with the rfc8785 reference, byte for byte."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.canonical import MAX_SAFE_INTEGER, canonical_json, canonicalize, event_body, quote
from audit.errors import EventEncodingError

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=25,
)


def _reference(value: Any) -> str | None:
    try:
        return rfc8785.dumps(value).decode()
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        return None


@settings(max_examples=600, deadline=None)
@given(json_values)
def test_fast_path_matches_rfc8785(value: Any) -> None:
    expected = _reference(value)
    if expected is None:
        with pytest.raises(EventEncodingError):
            canonical_json(value)
    else:
        assert canonical_json(value) == expected


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_text, json_values, max_size=6))
def test_parsed_copy_is_what_a_reader_gets_back(value: dict[str, Any]) -> None:
    if _reference(value) is None:
        return
    text, parsed = canonicalize(value)
    assert parsed == json.loads(text)


@pytest.mark.parametrize(
    "value",
    [
        {"\ue000": 1, "\U0001f600": 2},  # UTF-16 order differs from code point order
        {"a": 1.0, "b": 1e21, "c": 1e-7, "d": 0.1},  # ES6 number formatting
        {"big": MAX_SAFE_INTEGER, "neg": -MAX_SAFE_INTEGER},
        {"ctl": '\x00\x1f\x7f\u2028"\\', "é": "ü"},
    ],
)
def test_tricky_values_match_reference(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value).decode()


@pytest.mark.parametrize(
    "value",
    [{"n": MAX_SAFE_INTEGER + 1}, {"f": float("nan")}, {"s": "\ud800"}, {"o": object()}],
)
def test_unrepresentable_values_raise_typed_error(value: Any) -> None:
    with pytest.raises(EventEncodingError):
        canonical_json(value)


def test_event_body_equals_rfc8785_of_the_whole_event() -> None:
    event = {
        "seq": 7,
        "time": "2024-05-01T12:00:00.000001Z",
        "actor": {"id": 'ä"lice', "kind": "user"},
        "action": "push",
        "resource": {"repository": "r", "name": "n", "version": "1"},
        "decision": None,
        "outcome": "allowed",
        "details": {"x": [1, {"z": None, "a": True}]},
        "prev_hash": "0" * 64,
    }
    pieces = {k: canonical_json(v) for k, v in event.items() if isinstance(v, dict) or v is None}
    body = event_body(
        seq=7,
        time=str(event["time"]),
        action="push",
        outcome="allowed",
        prev_hash="0" * 64,
        actor=pieces["actor"],
        resource=pieces["resource"],
        decision=pieces["decision"],
        details=pieces["details"],
    )
    assert body == rfc8785.dumps(event).decode()
    with_hash = event_body(hash="f" * 64, **{**_kw(event, pieces)})
    assert with_hash == rfc8785.dumps({**event, "hash": "f" * 64}).decode()


def _kw(event: dict[str, Any], pieces: dict[str, str]) -> dict[str, Any]:
    return {
        "seq": event["seq"],
        "time": event["time"],
        "action": event["action"],
        "outcome": event["outcome"],
        "prev_hash": event["prev_hash"],
        **pieces,
    }


def test_quote_matches_canonical_strings() -> None:
    for text in ["plain", 'q"uote', "back\\slash", "\n\t\x01", "ünï", "\U0001f600"]:
        assert quote(text) == rfc8785.dumps(text).decode()
