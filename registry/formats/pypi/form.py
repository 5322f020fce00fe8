"""The legacy upload form (``multipart/form-data``), read as it streams.

twine and ``uv publish`` send the metadata fields first and the file last, in
a part named ``content``. :class:`UploadForm` parses the body incrementally:
fields are collected (only the few the registry reads, each bounded), and the
file's bytes are handed on as an async stream -- straight into blob staging --
without ever holding the distribution in memory. Reading stops at the file's
first byte, so the request-stage decision can be made knowing the project's
name and version but before any content is accepted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect

from registry.errors import BadRequest

CONTENT = "content"
# The fields the registry reads; the rest (description, classifiers, ...) are
# taken from the file's own metadata, so their values are not even kept.
KEPT_FIELDS = frozenset(
    {
        ":action",
        "protocol_version",
        "name",
        "version",
        "filetype",
        "pyversion",
        "metadata_version",
        "sha256_digest",
        "md5_digest",
        "blake2_256_digest",
        "comment",
    }
)
MAX_FIELD_SIZE = 64 * 1024
MAX_PARTS = 1000
DRAIN_LIMIT = 64 * 1024 * 1024


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    content_disposition: bytes = b""


class UploadForm:
    """Fields of the upload, and its ``content`` file as a stream."""

    def __init__(self, body: AsyncIterator[bytes], content_type: str) -> None:
        mime, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if mime != b"multipart/form-data" or not boundary:
            raise BadRequest(
                "an upload is a multipart/form-data POST with the file in a part named "
                "'content' (the legacy upload API twine and uv publish use)"
            )
        self._body = body
        self.fields: dict[str, list[str]] = {}
        self.filename: str | None = None
        self._pending: list[bytes] = []
        self._part = _Part()
        self._parts = 0
        self._in_content = False
        self._content_done = False
        self._ended = False
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._part_begin,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_end": self._end,
            },
        )

    def field(self, name: str) -> str | None:
        """The first value of a field, or None."""
        values = self.fields.get(name)
        return values[0] if values else None

    async def read_fields(self) -> None:
        """Read up to the first byte of the file (or the end of a form without one)."""
        while not self._in_content and not self._ended:
            if not await self._feed():
                break
        if self.filename is None:
            raise BadRequest("the upload has no file: send it in a part named 'content'")

    async def content(self) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive; then the rest of the form is read."""
        while True:
            while self._pending:
                yield self._pending.pop(0)
            if self._content_done:
                break
            if not await self._feed():
                raise BadRequest("the upload ended inside the file: the body is truncated")
        while not self._ended:
            if not await self._feed():
                raise BadRequest("the upload form is truncated: no closing boundary")

    async def drain(self, limit: int = DRAIN_LIMIT) -> None:
        """Read and drop what the client is still sending (up to ``limit`` bytes).

        An HTTP/1.1 client that is still writing its body when the answer
        comes and the connection closes sees a reset, not the answer.
        """
        drained = 0
        try:
            async for chunk in self._body:
                drained += len(chunk)
                if drained > limit:
                    return
        except ClientDisconnect:
            return

    async def _feed(self) -> bool:
        """Parse the next chunk of the body; False at its end."""
        try:
            chunk = await anext(self._body)
        except StopAsyncIteration:
            return False
        if chunk:
            try:
                self._parser.write(chunk)
            except MultipartParseError as error:
                raise BadRequest(f"the upload form is malformed: {error}") from None
        return True

    # -- parser callbacks ------------------------------------------------------

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise BadRequest(f"the upload form has more than {MAX_PARTS} parts")
        self._part = _Part()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._part.header_field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._part.header_value += data[start:end]

    def _header_end(self) -> None:
        part = self._part
        if bytes(part.header_field).lower() == b"content-disposition":
            part.content_disposition = bytes(part.header_value)
        part.header_field.clear()
        part.header_value.clear()

    def _headers_finished(self) -> None:
        part = self._part
        _kind, options = parse_options_header(part.content_disposition)
        part.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if part.name == CONTENT:
            if self.filename is not None:
                raise BadRequest("the upload has more than one 'content' part; send one file")
            if filename is None:
                raise BadRequest("the 'content' part must be a file with a filename")
            self.filename = filename.decode("utf-8", "replace").rsplit("/", 1)[-1]
            self._in_content = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        if part.name == CONTENT and self._in_content:
            self._pending.append(bytes(data[start:end]))
            return
        if part.name not in KEPT_FIELDS:
            return
        part.value += data[start:end]
        if len(part.value) > MAX_FIELD_SIZE:
            raise BadRequest(f"the field {part.name!r} is longer than {MAX_FIELD_SIZE} bytes")

    def _part_end(self) -> None:
        part = self._part
        if part.name == CONTENT and self._in_content:
            self._content_done = True
            return
        if part.name in KEPT_FIELDS:
            value = bytes(part.value).decode("utf-8", "replace")
            self.fields.setdefault(part.name, []).append(value)

    def _end(self) -> None:
        self._ended = True
