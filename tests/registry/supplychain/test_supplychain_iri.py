"""The IRI format check that replaces rfc3987_syntax in SBOM validation.

``rfc3987_syntax`` stays installed (cyclonedx-python-lib's extra brings it), so
the tests compare our verdicts with its grammar on hand-picked and generated
strings, and check that importing the validator does not load it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.supplychain.errors import SbomInvalid
from registry.supplychain.sbom._jsonschema import is_iri, is_iri_reference
from registry.supplychain.sbom.validate import validate_json

rfc3987_syntax = pytest.importorskip("rfc3987_syntax")

SAMPLES = [
    "https://example.com/a/b?c=d#e",
    "https://例え.テスト/パス?クエリ#断片",
    "urn:isbn:0451450523",
    "mailto:someone@example.org",
    "file:///etc/passwd",
    "pkg:pypi/requests@2.31.0",
    "relative/path",
    "../up",
    "//host/only",
    "#fragment",
    "",
    "https://example.com/a b",
    "https://example.com/<x>",
    "http://exa mple.com",
    "https://example.com/%zz",
    "https://example.com/\x7f",
    "https://example.com/\u00a0",
    "https://example.com/\ufff0",
    "https://example.com/?\ue000",
    "https://example.com/\ue000",
    "http://[::1/",
    "ht tp://x",
    ":no-scheme",
    "https://example.com/\\path",
    "https://example.com/a|b",
    "https://user:pass@example.com:443/",
]


@pytest.mark.parametrize("value", SAMPLES)
def test_verdicts_match_rfc3987_syntax(value: str) -> None:
    assert is_iri(value) == rfc3987_syntax.is_valid_syntax("iri", value)
    assert is_iri_reference(value) == rfc3987_syntax.is_valid_syntax("iri_reference", value)


def test_ip_literals_are_iris() -> None:
    """RFC 3987 keeps RFC 3986's IP-literal host; rfc3987_syntax 1.1.0 refuses it (its bug)."""
    assert is_iri("http://[::1]:8080/x")
    assert not rfc3987_syntax.is_valid_syntax("iri", "http://[::1]:8080/x")


def test_astral_ucschars_are_iris() -> None:
    """ucschar includes U+10000-1FFFD and the planes above; rfc3987_syntax 1.1.0 refuses them."""
    assert is_iri("http://x/\U0001f600")
    assert not is_iri("http://x/\U0001ffff")  # a plane's last two code points are excluded
    assert not rfc3987_syntax.is_valid_syntax("iri", "http://x/\U0001f600")


# Characters of the Basic Multilingual Plane, where both checks follow the RFC.
IRI_CHARS = st.sampled_from(
    [*"abcXYZ019:/?#[]@!$&'()*+,;=-._~% <>\"{}|\\^`", "é", "例", "\ue000", "\ufff0"]
)


@settings(max_examples=400, deadline=None)
@given(st.text(IRI_CHARS, max_size=24))
def test_generated_verdicts_match_rfc3987_syntax(value: str) -> None:
    assert is_iri_reference(value) == rfc3987_syntax.is_valid_syntax("iri_reference", value)
    assert is_iri(value) == rfc3987_syntax.is_valid_syntax("iri", value)


def test_validation_refuses_a_bad_iri_in_an_sbom() -> None:
    document = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "externalReferences": [{"type": "website", "url": "https://example.com/a b"}],
    }
    with pytest.raises(SbomInvalid, match="externalReferences/0/url"):
        validate_json(document)
    document["externalReferences"][0]["url"] = "https://例え.テスト/"
    assert validate_json(document) == "1.6"


def test_the_server_does_not_load_the_grammar_library() -> None:
    probe = (
        "import sys, registry.app, registry.supplychain.sbom.validate; "
        "print('rfc3987_syntax' in sys.modules, 'lark' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
