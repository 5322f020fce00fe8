"""The streaming publish-document parser against :mod:`json`, on generated documents.

Whatever the JSON and however the body is cut into chunks, the parser must
build what ``json.loads`` builds (the attachment's data aside) and hand out
exactly the attachment's decoded bytes; malformed JSON is refused.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.formats.npm.document import PublishDocument
from registry.packages import PackageInvalid

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _parse(body: bytes, cuts: list[int]) -> tuple[dict[str, Any], bytes]:
    document = PublishDocument()
    decoded: list[bytes] = []
    start = 0
    for cut in sorted({c % (len(body) + 1) for c in cuts} | {len(body)}):
        decoded += document.feed(body[start:cut])
        start = cut
    return document.close(), b"".join(decoded)


@settings(max_examples=300, deadline=None)
@given(
    metadata=st.dictionaries(st.text(max_size=8), values, max_size=5),
    tarball=st.binary(max_size=2000),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
    indent=st.sampled_from([None, 0, 2]),
    ascii_only=st.booleans(),
)
def test_matches_json_loads_and_streams_the_attachment(
    metadata: dict[str, Any], tarball: bytes, cuts: list[int], indent: int | None, ascii_only: bool
) -> None:
    document = {
        **metadata,
        "_attachments": {
            "pkg-1.0.0.tgz": {"data": base64.b64encode(tarball).decode(), "length": len(tarball)}
        },
    }
    body = json.dumps(document, indent=indent, ensure_ascii=ascii_only).encode()
    parsed, decoded = _parse(body, cuts)
    expected = json.loads(body)
    expected["_attachments"]["pkg-1.0.0.tgz"]["data"] = None
    assert parsed == expected
    assert decoded == tarball


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":1,}',
        b'{"a" 1}',
        b"[1,2",
        b'{"a":tru}',
        b"{}x",
        b'{"a":"\x01"}',
        b'{"a":01}',
        b'{,"a":1}',
        b'{"a":[1 2]}',
        b'{"_attachments":{"p.tgz":{"data":"abc"}}}',
        b'{"_attachments":{"p.tgz":{"data":"ab\\/c"}}}',
        b'{"_attachments":{"a":{"data":"AA=="},"b":{"data":"AA=="}}}',
        b"[]",
    ],
)
def test_malformed_documents_are_refused(body: bytes) -> None:
    with pytest.raises(PackageInvalid):
        _parse(body, [3, 7])


def test_metadata_is_bounded() -> None:
    document = PublishDocument(max_metadata=1000)
    with pytest.raises(PackageInvalid, match="larger than 1000 bytes"):
        document.feed(json.dumps({"readme": "x" * 2000}).encode())


def test_the_version_is_known_before_the_tarball() -> None:
    body = json.dumps(
        {
            "name": "p",
            "versions": {"1.0.0": {"name": "p", "version": "1.0.0"}},
            "_attachments": {"p-1.0.0.tgz": {"data": base64.b64encode(b"x" * 300).decode()}},
        }
    ).encode()
    document = PublishDocument()
    start = body.index(b'"data"') + 20
    assert document.feed(body[:start])  # the first bytes of the tarball
    assert document.attachment_started
    assert document.partial["versions"]["1.0.0"]["version"] == "1.0.0"
