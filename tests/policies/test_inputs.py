"""The input document: its shape, its digest and its refusals, without any engine."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import PolicyInputError
from policies.inputs import (
    Artifact,
    Context,
    Resource,
    Subject,
    TagChange,
    build_input,
    canonical_json,
    input_digest,
    rfc3339,
)
from tests.policies.conftest import make_input

TOP_LEVEL = {
    "version",
    "action",
    "subject",
    "resource",
    "repository",
    "artifact",
    "tag",
    "target",
    "retention",
    "context",
}


def test_document_has_every_documented_key() -> None:
    doc = make_input("push", artifact=Artifact(licenses=["MIT"], purls=["pkg:pypi/a@1"]))
    assert set(doc) == TOP_LEVEL
    assert doc["version"] == 1
    assert set(doc["subject"]) == {"id", "kind", "roles", "teams"}
    assert set(doc["resource"]) == {"repository", "format", "name", "version", "digest"}
    assert set(doc["artifact"]) == {
        "size",
        "created_at",
        "labels",
        "tags",
        "sbom",
        "vulnerabilities",
        "scan",
        "last_pulled_at",
        "downloads",
        "provenance",
    }
    assert doc["artifact"]["sbom"] == {"licenses": ["MIT"], "purls": ["pkg:pypi/a@1"]}
    assert doc["artifact"]["vulnerabilities"] == {
        "critical": 0,
        "high": 0,
        "medium": 0,
        "low": 0,
        "unknown": 0,
        "ids": [],
        "fixable": [],
    }
    assert doc["artifact"]["scan"] == {"status": "pending", "reason": None, "components": 0}
    assert set(doc["context"]) == {"time", "request_id", "client", "stage"}


def test_facts_that_do_not_apply_are_null() -> None:
    doc = make_input("pull")
    assert doc["tag"] is None
    assert doc["target"] is None
    assert doc["retention"] is None
    assert doc["artifact"]["last_pulled_at"] is None


def test_tag_and_target_when_they_apply() -> None:
    doc = make_input("tag", tag=TagChange("v1.0.0", "sha256:bb"), target="releases")
    assert doc["tag"] == {"name": "v1.0.0", "current_digest": "sha256:bb"}
    assert doc["target"] == {"repository": "releases"}


def test_times_are_rfc3339_utc_with_z() -> None:
    berlin = timezone(timedelta(hours=1))
    assert rfc3339(datetime(2026, 1, 1, 1, 0, tzinfo=berlin)) == "2026-01-01T00:00:00Z"
    assert rfc3339("2026-01-01T00:00:00+01:00") == "2026-01-01T00:00:00+01:00"
    assert rfc3339(None) is None


def test_naive_time_is_refused() -> None:
    with pytest.raises(PolicyInputError, match="no time zone"):
        rfc3339(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("subject", "stage", "action", "message"),
    [
        (Subject("x", "martian"), "request", "pull", "subject kind 'martian'"),
        (Subject("x", "user"), "later", "pull", "stage 'later'"),
        (Subject("x", "user"), "request", "", "action must be a non-empty string"),
    ],
)
def test_builder_refuses_unknown_vocabulary(
    subject: Subject, stage: str, action: str, message: str
) -> None:
    with pytest.raises(PolicyInputError, match=message):
        build_input(
            action=action,
            subject=subject,
            resource=Resource("libs"),
            context=Context(time=datetime.now(UTC), stage=stage),
        )


def test_digest_is_sha256_of_rfc8785_json() -> None:
    doc = make_input("pull")
    expected = "sha256:" + hashlib.sha256(rfc8785.dumps(doc)).hexdigest()
    assert input_digest(doc) == expected


def test_digest_ignores_key_order_and_sees_every_value() -> None:
    doc = make_input("pull")
    reordered = dict(reversed(list(doc.items())))
    assert input_digest(reordered) == input_digest(doc)
    assert input_digest(make_input("push")) != input_digest(doc)


@pytest.mark.parametrize(
    "bad",
    [
        {"a": {1, 2}},
        {"a": object()},
        {1: "integer key"},
        {"a": math.nan},
        {"a": 2**60},
        {"a": b"bytes"},
    ],
)
def test_non_json_input_is_a_clear_error(bad: dict[Any, Any]) -> None:
    with pytest.raises(PolicyInputError, match="not JSON"):
        input_digest(bad)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_docs = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_docs)
def test_canonical_json_matches_rfc8785(doc: Any) -> None:
    try:
        expected = rfc8785.dumps(doc)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        with pytest.raises(PolicyInputError):
            canonical_json(doc)
        return
    assert canonical_json(doc) == expected
