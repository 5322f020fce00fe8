"""The ``npm publish`` document, parsed as it streams, its tarball decoded on the way.

npm publishes one JSON document: the package's metadata and, under
``_attachments.<file>.data``, the tarball in base64. Reading it with
``json.loads`` would hold the whole body, and the decoded tarball, in memory.
:class:`PublishDocument` is an incremental JSON parser instead: it builds the
metadata as usual but decodes the one attachment's ``data`` string straight
into the caller's stream (the blob store's staging), so memory stays bounded
by the metadata, whatever the size of the package. npm writes
``_attachments`` last, so the version being published is known before the
first byte of the tarball: the request-stage decision can name it.

The parser is exact JSON (RFC 8259): strings are decoded by :mod:`json`
itself, so escapes and surrogates behave as everywhere else; what it adds are
limits (metadata size, nesting depth, one attachment).
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect

from registry.packages import PackageInvalid

MAX_METADATA = 16 * 1024 * 1024
MAX_DEPTH = 64
ATTACHMENTS = "_attachments"
_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_STRING_STOP = re.compile(rb'["\\]')
_SCALAR = re.compile(rb"[-+.0-9a-zA-Z]*")
_UNSET = object()

# What the frame on top of the stack expects next.
_KEY_OR_END, _KEY, _COLON, _VALUE, _VALUE_OR_END, _COMMA_OR_END = range(6)


@dataclass
class _Frame:
    container: dict[str, Any] | list[Any]
    expecting: int
    key: str | None = None


class PublishDocument:
    """Feed the body chunk by chunk; collect the attachment's bytes as they are decoded."""

    def __init__(self, max_metadata: int = MAX_METADATA) -> None:
        self._max_metadata = max_metadata
        self._metadata_bytes = 0
        self._stack: list[_Frame] = []
        self._root: Any = _UNSET
        self._string: bytearray | None = None  # inside a string
        self._string_is_key = False
        self._escape = False  # the last byte seen inside a string was a backslash
        self._scalar: bytearray | None = None
        self._streaming = False  # inside the attachment's data string
        self._base64_rest = b""
        self._decoded: list[bytes] = []
        self._position = 0
        self.attachment: str | None = None  # the attachment's file name, once its data began
        self.attachment_size = 0

    @property
    def attachment_started(self) -> bool:
        return self.attachment is not None

    @property
    def partial(self) -> Any:
        """The document as parsed so far (containers fill in as the parser goes)."""
        return None if self._root is _UNSET else self._root

    def feed(self, chunk: bytes) -> list[bytes]:
        """Parse ``chunk``; return the attachment bytes it completed, in order."""
        view = chunk
        index = 0
        while index < len(view):
            if self._streaming:
                index = self._stream(view, index)
            elif self._string is not None:
                index = self._string_part(view, index)
            elif self._scalar is not None:
                index = self._scalar_part(view, index)
            else:
                index = self._structure(view, index)
        self._position += len(chunk)
        decoded, self._decoded = self._decoded, []
        return decoded

    def close(self) -> dict[str, Any]:
        """The whole document, once the body ended; ``data`` of the attachment is None."""
        if self._scalar is not None:
            self._finish_scalar()
        if self._string is not None or self._streaming or self._stack or self._root is _UNSET:
            raise self._error("the document ends before it is complete")
        if not isinstance(self._root, dict):
            raise PackageInvalid("the publish document must be a JSON object")
        return self._root

    # -- scanning ---------------------------------------------------------------------

    def _error(self, what: str) -> PackageInvalid:
        return PackageInvalid(f"the publish document is not valid JSON: {what}")

    def _count(self, size: int) -> None:
        self._metadata_bytes += size
        if self._metadata_bytes > self._max_metadata:
            raise PackageInvalid(
                f"the package metadata is larger than {self._max_metadata} bytes "
                "(the tarball aside)"
            )

    def _structure(self, view: bytes, index: int) -> int:
        match = _WHITESPACE.match(view, index)
        end = match.end() if match else index
        self._count(end - index)
        if end >= len(view):
            return end
        self._count(1)
        char = view[end : end + 1]
        if self._root is not _UNSET and not self._stack:
            raise self._error(f"unexpected {char!r} after the document")
        top = self._stack[-1] if self._stack else None
        expecting = top.expecting if top is not None else _VALUE
        if char == b'"':
            if expecting in (_KEY_OR_END, _KEY):
                self._string_is_key = True
            elif expecting in (_VALUE, _VALUE_OR_END):
                self._string_is_key = False
                if self._is_attachment_data():
                    self._start_attachment()
                    return end + 1
            else:
                raise self._error(f"unexpected string at byte {self._position + end}")
            self._string = bytearray()
            return end + 1
        if char in (b"{", b"["):
            if expecting not in (_VALUE, _VALUE_OR_END):
                raise self._error(f"unexpected {char.decode()} at byte {self._position + end}")
            if len(self._stack) >= MAX_DEPTH:
                raise self._error(f"nested deeper than {MAX_DEPTH} levels")
            container: dict[str, Any] | list[Any] = {} if char == b"{" else []
            self._attach(container)
            self._stack.append(_Frame(container, _KEY_OR_END if char == b"{" else _VALUE_OR_END))
            return end + 1
        if char in (b"}", b"]"):
            closes_object = char == b"}"
            if (
                top is None
                or isinstance(top.container, dict) != closes_object
                or expecting not in ((_KEY_OR_END, _COMMA_OR_END) if closes_object else
                                     (_VALUE_OR_END, _COMMA_OR_END))
            ):  # fmt: skip
                raise self._error(f"unexpected {char.decode()} at byte {self._position + end}")
            self._stack.pop()
            return end + 1
        if char == b":":
            if expecting != _COLON or top is None:
                raise self._error(f"unexpected ':' at byte {self._position + end}")
            top.expecting = _VALUE
            return end + 1
        if char == b",":
            if expecting != _COMMA_OR_END or top is None:
                raise self._error(f"unexpected ',' at byte {self._position + end}")
            top.expecting = _KEY if isinstance(top.container, dict) else _VALUE
            return end + 1
        if expecting not in (_VALUE, _VALUE_OR_END):
            raise self._error(f"unexpected {char!r} at byte {self._position + end}")
        self._scalar = bytearray()
        return end

    def _attach(self, value: Any) -> None:
        """Put a finished value (or a container about to fill) where the parser stands."""
        if not self._stack:
            self._root = value
            return
        top = self._stack[-1]
        if isinstance(top.container, dict):
            assert top.key is not None
            top.container[top.key] = value
        else:
            top.container.append(value)
        top.expecting = _COMMA_OR_END

    def _string_part(self, view: bytes, index: int) -> int:
        assert self._string is not None
        if self._escape:
            self._string += view[index : index + 1]
            self._count(1)
            self._escape = False
            return index + 1
        match = _STRING_STOP.search(view, index)
        if match is None:
            self._string += view[index:]
            self._count(len(view) - index)
            return len(view)
        stop = match.start()
        self._string += view[index:stop]
        self._count(stop - index + 1)
        if view[stop : stop + 1] == b"\\":
            self._string += b"\\"
            self._escape = True
            return stop + 1
        self._finish_string()
        return stop + 1

    def _finish_string(self) -> None:
        assert self._string is not None
        raw, self._string = bytes(self._string), None
        try:
            value = json.loads(b'"' + raw + b'"')
        except ValueError as error:
            raise self._error(f"bad string near byte {self._position}: {error}") from None
        if self._string_is_key:
            top = self._stack[-1]
            top.key = value
            top.expecting = _COLON
        else:
            self._attach(value)

    def _scalar_part(self, view: bytes, index: int) -> int:
        assert self._scalar is not None
        match = _SCALAR.match(view, index)
        end = match.end() if match else index
        self._scalar += view[index:end]
        self._count(end - index)
        if end < len(view):
            self._finish_scalar()
        return end

    def _finish_scalar(self) -> None:
        assert self._scalar is not None
        raw, self._scalar = bytes(self._scalar), None
        try:
            value = json.loads(raw)
        except ValueError:
            raise self._error(f"{raw[:40]!r} is not a JSON value") from None
        if isinstance(value, (dict, list, str)):  # pragma: no cover - the scanner stops those
            raise self._error(f"{raw[:40]!r} is not a JSON value")
        self._attach(value)

    # -- the attachment -----------------------------------------------------------------

    def _is_attachment_data(self) -> bool:
        """At ``_attachments.<file>.data`` of the root object?"""
        stack = self._stack
        return (
            len(stack) == 3
            and stack[0].key == ATTACHMENTS
            and isinstance(stack[1].container, dict)
            and isinstance(stack[2].container, dict)
            and stack[2].key == "data"
        )

    def _start_attachment(self) -> None:
        name = self._stack[1].key
        if self.attachment is not None:
            raise PackageInvalid(
                f"the publish document attaches {self.attachment} and {name}; publish one "
                "tarball at a time (provenance bundles are not accepted)"
            )
        self.attachment = name
        self._streaming = True

    def _stream(self, view: bytes, index: int) -> int:
        stop = view.find(b'"', index)
        end = len(view) if stop < 0 else stop
        if view.find(b"\\", index, end) >= 0:
            raise PackageInvalid("the attachment data must be plain base64 (no escapes)")
        self._decode(view[index:end], final=stop >= 0)
        if stop < 0:
            return len(view)
        self._streaming = False
        self._attach(None)
        return stop + 1

    def _decode(self, data: bytes, *, final: bool) -> None:
        pending = self._base64_rest + data
        usable = len(pending) if final else len(pending) - len(pending) % 4
        self._base64_rest = pending[usable:]
        if final and len(pending) % 4:
            raise PackageInvalid("the attachment data is not valid base64 (truncated)")
        if not usable:
            return
        try:
            decoded = binascii.a2b_base64(pending[:usable], strict_mode=True)
        except binascii.Error as error:
            raise PackageInvalid(f"the attachment data is not valid base64: {error}") from None
        self.attachment_size += len(decoded)
        self._decoded.append(decoded)


class PublishBody:
    """A request body read up to the tarball, then the tarball as a stream."""

    def __init__(self, body: AsyncIterator[bytes], max_metadata: int = MAX_METADATA) -> None:
        self._body = body
        self.document = PublishDocument(max_metadata)
        self._pending: list[bytes] = []
        self._ended = False

    async def read_metadata(self) -> None:
        """Read until the tarball's first byte (or the end of a body without one)."""
        while not self.document.attachment_started and await self._feed():
            pass

    async def tarball(self) -> AsyncIterator[bytes]:
        """The decoded tarball as it arrives, then the rest of the document is read."""
        while True:
            while self._pending:
                yield self._pending.pop(0)
            if not await self._feed():
                return

    async def _feed(self) -> bool:
        if self._ended:
            return False
        try:
            chunk = await anext(self._body)
        except StopAsyncIteration:
            self._ended = True
            return False
        self._pending.extend(self.document.feed(chunk))
        return True

    async def drain(self, limit: int = 64 * 1024 * 1024) -> None:
        """Read and drop the rest of the body, so the client sees the answer."""
        drained = 0
        while drained <= limit:
            try:
                chunk = await anext(self._body)
            except (StopAsyncIteration, ClientDisconnect):
                return
            drained += len(chunk)
