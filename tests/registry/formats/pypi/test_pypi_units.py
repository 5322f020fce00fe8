"""Pure pieces of the Python repository: names, negotiation, licenses, the streaming form."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from registry.errors import BadRequest
from registry.formats.pypi.form import UploadForm
from registry.formats.pypi.names import check_project_name, normalize, parse_filename
from registry.formats.pypi.simple import HTML, HTML_V1, JSON_V1, negotiate
from registry.packages import PackageInvalid, license_ids, spdx_expression
from registry.packages.archives import safe_member_name


@pytest.mark.parametrize(
    ("name", "normal"),
    [("Foo.Bar_baz", "foo-bar-baz"), ("a--b", "a-b"), ("A", "a"), ("x_._y", "x-y")],
)
def test_pep503_normalisation(name: str, normal: str) -> None:
    assert normalize(name) == normal
    assert check_project_name(name) == normal


@pytest.mark.parametrize("name", ["-x", "x-", "a b", "", "ü"])
def test_invalid_project_names(name: str) -> None:
    with pytest.raises(PackageInvalid):
        check_project_name(name)


def test_file_names() -> None:
    wheel = parse_filename("Foo_Bar-1.0.post1-py3-none-any.whl")
    assert (wheel.name, str(wheel.version), wheel.is_wheel) == ("foo-bar", "1.0.post1", True)
    sdist = parse_filename("foo_bar-2.0rc1.tar.gz")
    assert (sdist.name, str(sdist.version), sdist.is_wheel) == ("foo-bar", "2.0rc1", False)
    for bad in ("foo-1.0.zip", "foo.whl", "../foo-1.0.tar.gz", "foo-1.0-py3-none-any.whl/x"):
        with pytest.raises(PackageInvalid):
            parse_filename(bad)


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, HTML),
        (f"{JSON_V1}, {HTML_V1};q=0.1, text/html;q=0.01", JSON_V1),
        ("text/html", HTML),
        (f"{JSON_V1};q=0.2, {HTML_V1};q=0.9", HTML_V1),
        ("application/vnd.pypi.simple.latest+json", JSON_V1),
        ("application/json", None),
        (f"{JSON_V1};q=0", None),
    ],
)
def test_content_negotiation(accept: str | None, media: str | None) -> None:
    assert negotiate(accept) == media


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("MIT", ["MIT"]),
        ("mit OR apache-2.0", ["Apache-2.0", "MIT"]),
        ("(MIT AND BSD-3-Clause) OR GPL-3.0-or-later", ["BSD-3-Clause", "GPL-3.0-or-later", "MIT"]),
        (
            "GPL-2.0-only WITH Classpath-exception-2.0",
            ["GPL-2.0-only", "GPL-2.0-only WITH Classpath-exception-2.0"],
        ),
        ("GPLv3", []),
        ("Proprietary", []),
        (None, []),
    ],
)
def test_license_ids(text: str | None, ids: list[str]) -> None:
    assert license_ids(spdx_expression(text)) == ids


@pytest.mark.parametrize("name", ["/etc/x", "a/../../b", "C:/x", "a\\b", "a\x00b", "..", "./"])
def test_unsafe_member_names(name: str) -> None:
    with pytest.raises(PackageInvalid):
        safe_member_name(name)


def test_safe_member_names_are_normalised() -> None:
    assert safe_member_name("./package//lib/./x.js") == "package/lib/x.js"


def _body(fields: dict[str, str], content: bytes, chunk: int) -> tuple[bytes, str, list[bytes]]:
    request = httpx.Request(
        "POST", "http://x/", data=fields, files={"content": ("demo-1.0.tar.gz", content)}
    )
    body = request.read()
    return (
        body,
        request.headers["content-type"],
        [body[i : i + chunk] for i in range(0, len(body), chunk)],
    )


async def _stream(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


@pytest.mark.parametrize("chunk", [1, 7, 64, 100_000])
def test_the_form_streams_the_file_and_keeps_only_known_fields(chunk: int) -> None:
    content = bytes(range(256)) * 40
    fields = {":action": "file_upload", "name": "demo", "version": "1.0", "description": "x" * 500}
    _body_bytes, content_type, chunks = _body(fields, content, chunk)

    async def run() -> tuple[UploadForm, bytes]:
        form = UploadForm(_stream(chunks), content_type)
        await form.read_fields()
        received = b"".join([piece async for piece in form.content()])
        return form, received

    form, received = asyncio.run(run())
    assert received == content
    assert form.filename == "demo-1.0.tar.gz"
    assert form.field("name") == "demo" and form.field(":action") == "file_upload"
    assert form.field("description") is None  # not kept: the file's metadata is the truth


def test_a_form_without_a_file_is_refused() -> None:
    request = httpx.Request("POST", "http://x/", data={":action": "file_upload"}, files={})
    body = request.read()

    async def run() -> None:
        form = UploadForm(_stream([body]), request.headers["content-type"])
        await form.read_fields()

    with pytest.raises(BadRequest):
        asyncio.run(run())
    with pytest.raises(BadRequest, match="multipart/form-data"):
        UploadForm(_stream([]), "application/json")
