"""The download listener: signed blob links answered with ``sendfile(2)``.

Why a listener of our own: granian's ``pathsend`` reads a file in 128 KiB
pieces on tokio's blocking pool and writes each to the socket, and no ASGI
message can reach the socket itself. On the 2-core loopback machine a 1 GiB
blob cost the server 0.5-0.6 s of CPU that way (docker-registry's ``io.Copy``
about the same), and 0.24-0.33 s through ``loop.sendfile``, which the kernel
copies from the page cache straight into the socket.

Each worker serves the port (``SO_REUSEPORT``) from a thread running a
stdlib asyncio loop of its own: the worker's own loop is uvloop, which has no
``sendfile``, and ``os.sendfile`` releases the GIL. HTTP is parsed by h11;
the body bypasses it through ``send_with_data_passthrough``, which h11
offers for exactly this. Only
``GET`` and ``HEAD`` of ``/blobs/<storage digest>?expires=&signature=``
are answered; what may be pulled was decided before the link was minted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from http import HTTPStatus
from typing import BinaryIO
from urllib.parse import parse_qs, urlsplit

import h11

from registry.blobs import BlobNotFound, BlobStore, InvalidDigest
from registry.downloads.links import PATH_PREFIX, DownloadLinks, LinkRefused

MAX_HEAD_BYTES = 16 * 1024
READ_BYTES = 64 * 1024
IDLE_TIMEOUT_S = 30.0
OCTET_STREAM = b"application/octet-stream"


@dataclass(frozen=True)
class _FileBody:
    """A body h11 frames (it only asks its length) while ``sendfile`` sends it."""

    file: BinaryIO
    size: int

    def __len__(self) -> int:
        return self.size


class _Answer(Exception):
    """A short plain-text answer instead of the blob."""

    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or []


class DownloadListener:
    """Serves signed blob links on ``host:port`` until :meth:`close`."""

    def __init__(self, links: DownloadLinks, blobs: BlobStore, host: str) -> None:
        self._links = links
        self._blobs = blobs
        self._host = host
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[asyncio.Task[None]] = set()  # touched on the listener's loop only

    def start(self) -> None:
        """Bind here (so a port in use raises to the caller), then serve from a thread."""
        sock = socket.create_server(
            (self._host, self._links.port), reuse_port=True, family=_family(self._host)
        )
        loop = asyncio.new_event_loop()
        ready: Future[asyncio.Server] = Future()

        def run() -> None:
            try:
                server = loop.run_until_complete(asyncio.start_server(self._connection, sock=sock))
            except BaseException as error:
                sock.close()
                loop.close()
                ready.set_exception(error)
                return
            ready.set_result(server)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="downloads", daemon=True)
        self._thread.start()
        self._server = ready.result(timeout=10)
        self._loop = loop

    @property
    def port(self) -> int:
        """The bound port (useful when 0 asked for any)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def close(self) -> None:
        """Stop accepting, cut open connections, and end the thread."""
        loop, thread, server = self._loop, self._thread, self._server
        if loop is None or thread is None or server is None:
            return
        self._loop = self._thread = self._server = None
        asyncio.run_coroutine_threadsafe(self._shut(server), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()

    async def _shut(self, server: asyncio.Server) -> None:
        server.close()
        # A download in flight ends with the worker. Cancelling its task (not
        # aborting its transport) lets loop.sendfile put the transport back first.
        for task in self._connections:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._connections, return_exceptions=True), 5)
            await asyncio.wait_for(server.wait_closed(), 5)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while (request := await _next_request(conn, reader)) is not None:
                await self._answer(conn, request, writer)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except h11.RemoteProtocolError as error:
            with contextlib.suppress(h11.LocalProtocolError, ConnectionError):
                await _send_text(conn, writer, _Answer(400, f"bad request: {error}"))
        except (ConnectionError, TimeoutError):
            pass  # the client went away or idled: nothing to answer
        finally:
            self._connections.discard(task)
            writer.close()

    async def _answer(
        self, conn: h11.Connection, request: h11.Request, writer: asyncio.StreamWriter
    ) -> None:
        try:
            file, digest = self._open(request)
        except _Answer as answer:
            await _send_text(conn, writer, answer)
            return
        with file:
            await _send_file(conn, writer, file, digest, head=request.method == b"HEAD")

    def _open(self, request: h11.Request) -> tuple[BinaryIO, str]:
        """The blob the link names and its digest, once the method and link check out."""
        if request.method not in (b"GET", b"HEAD"):
            raise _Answer(405, "only GET and HEAD", [(b"allow", b"GET, HEAD")])
        target = urlsplit(request.target.decode("ascii", "replace"))
        digest = target.path.removeprefix(PATH_PREFIX)
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        if not target.path.startswith(PATH_PREFIX) or "/" in digest:
            raise _Answer(404, "not a download link; pull blobs through the registry's /v2 API")
        try:
            asked = query.get("digest", "")
            self._links.check(digest, asked, query.get("expires", ""), query.get("signature", ""))
            return self._blobs.path_of(digest).open("rb"), asked
        except LinkRefused as refused:
            raise _Answer(403, f"{refused}; request the blob from the registry again") from None
        except (BlobNotFound, InvalidDigest):
            raise _Answer(404, "this blob is no longer stored") from None


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


async def _next_request(conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Request | None:
    """The next request with its (ignored) body read; ``None`` once the client is done."""
    request: h11.Request | None = None
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            async with asyncio.timeout(IDLE_TIMEOUT_S):
                conn.receive_data(await reader.read(READ_BYTES))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.EndOfMessage):
            return request
        elif isinstance(event, h11.ConnectionClosed):
            return None


async def _send_file(
    conn: h11.Connection, writer: asyncio.StreamWriter, file: BinaryIO, digest: str, *, head: bool
) -> None:
    size = _size_of(file)
    headers = [
        (b"content-type", OCTET_STREAM),
        (b"content-length", str(size).encode()),
        (b"docker-content-digest", digest.encode()),
        (b"etag", f'"{digest}"'.encode()),
    ]
    writer.write(conn.send(h11.Response(status_code=200, headers=headers, reason=b"OK")))
    if not head and size:
        # h11 types Data.data as bytes; passthrough exists to carry a sendfile marker.
        framed = conn.send_with_data_passthrough(h11.Data(data=_FileBody(file, size)))  # type: ignore[arg-type]
        for part in framed or ():
            if isinstance(part, _FileBody):
                await asyncio.get_running_loop().sendfile(writer.transport, part.file, 0, size)
            else:
                writer.write(part)
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()


async def _send_text(conn: h11.Connection, writer: asyncio.StreamWriter, answer: _Answer) -> None:
    body = (str(answer) + "\n").encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *answer.headers,
    ]
    reason = HTTPStatus(answer.status).phrase.encode()
    writer.write(conn.send(h11.Response(status_code=answer.status, headers=headers, reason=reason)))
    writer.write(conn.send(h11.Data(data=body)))
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()


def _size_of(file: BinaryIO) -> int:
    return os.fstat(file.fileno()).st_size
