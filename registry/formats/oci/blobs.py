"""Blobs: GET (with a single byte range) and HEAD are pulls, DELETE is a delete.

A blob is served from an image only while the image links it (uploaded,
mounted or referenced there). Whole blobs go out as file responses (ASGI
``pathsend`` under granian), or, with the download listener on and the blob
at least ``download_min_size``, as a ``307`` to a signed link it answers with
``sendfile`` (:mod:`registry.downloads`); ranges are streamed.
"""

from __future__ import annotations

import re

from sqlmodel import Session
from starlette.responses import FileResponse, Response, StreamingResponse

from registry.formats.oci import digests, lookups, records
from registry.formats.oci.call import Call
from registry.formats.oci.errors import OciError, blob_unknown
from registry.formats.oci.lookups import BlobHit
from registry.governance import DELETE, PULL, Action, Serving
from registry.web.hops import governed

OCTET_STREAM = "application/octet-stream"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


async def _pulled(call: Call, *, head: bool) -> BlobHit:
    """Resolve, decide and record (the rows first, as every pull)."""
    digest = digests.parse(call.target.arg)
    target = call.target
    details = {"blob": digest, "head": True} if head else {"blob": digest}
    action = Action(verb=PULL, resource=call.resource(digest=digest), details=details)

    def serving(link: BlobHit | None) -> Serving:
        return Serving(error=blob_unknown(digest)) if link is None else Serving()

    link = await governed(
        call.services,
        lambda: call.start_read(
            lambda conn: lookups.blob(conn, target.repository, target.image, digest),
            lambda _link: action,
            serving,
        ),
    )
    assert link is not None
    return link


def _headers(link: BlobHit) -> dict[str, str]:
    return {
        "Docker-Content-Digest": link.digest,
        "Accept-Ranges": "bytes",
        "ETag": f'"{link.digest}"',
    }


async def get(call: Call) -> Response:
    link = await _pulled(call, head=False)
    requested = call.request.headers.get("range")
    if requested is not None:
        return _ranged(call, link, requested)
    downloads = call.services.downloads
    if downloads is not None and downloads.serves(link.size):
        hostname = call.request.url.hostname or "localhost"
        location = downloads.link(link.storage_digest, link.digest, hostname)
        return Response(status_code=307, headers={**_headers(link), "Location": location})
    path = call.services.blobs.path_of(link.storage_digest)
    return FileResponse(path, media_type=OCTET_STREAM, headers=_headers(link))


async def head(call: Call) -> Response:
    link = await _pulled(call, head=True)
    headers = {**_headers(link), "Content-Length": str(link.size), "Content-Type": OCTET_STREAM}
    return Response(status_code=200, headers=headers)


def byte_range(value: str, size: int) -> tuple[int, int]:
    """``[start, end]`` (inclusive) of a single ``bytes=`` range; 416 when unsatisfiable."""
    match = _RANGE.fullmatch(value.strip())
    if match is None or (not match[1] and not match[2]):
        raise _unsatisfiable(value, size)
    if not match[1]:  # suffix: the last N bytes
        count = int(match[2])
        if count == 0 or size == 0:
            raise _unsatisfiable(value, size)
        return max(size - count, 0), size - 1
    start = int(match[1])
    end = int(match[2]) if match[2] else size - 1
    if start >= size or end < start:
        raise _unsatisfiable(value, size)
    return start, min(end, size - 1)


def _unsatisfiable(value: str, size: int) -> OciError:
    # The spec has no code for ranges; SIZE_INVALID (a length outside the content) is nearest.
    return OciError(
        "SIZE_INVALID",
        f"range {value!r} is not satisfiable for a blob of {size} bytes; ask for one "
        "bytes=START-END range inside it",
        status=416,
        headers={"Content-Range": f"bytes */{size}"},
    )


def _ranged(call: Call, link: BlobHit, requested: str) -> Response:
    start, end = byte_range(requested, link.size)
    body = call.services.blobs.iter_range(link.storage_digest, start, end + 1)
    headers = {
        **_headers(link),
        "Content-Range": f"bytes {start}-{end}/{link.size}",
        "Content-Length": str(end - start + 1),
    }
    return StreamingResponse(body, status_code=206, media_type=OCTET_STREAM, headers=headers)


async def delete(call: Call) -> Response:
    digest = digests.parse(call.target.arg)
    target = call.target

    def lookup(session: Session) -> int:
        return records.repository_id(records.oci_repository(session, target.repository))

    repo_id = await call.read(lookup)

    def apply(session: Session) -> None:
        records.unlink_blob(session, repo_id, target.image, digest)

    action = Action(verb=DELETE, resource=call.resource(digest=digest), details={"blob": digest})
    await call.govern(action, apply)
    return Response(status_code=202)
