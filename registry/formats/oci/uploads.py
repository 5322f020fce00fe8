"""Blob uploads: monolithic, chunked, streamed, resumable, cancelled, mounted.

``POST`` is the push decided at stage ``request`` (may this subject write into
this image at all?). It either finishes at once (``?digest=`` with the body,
or a successful ``?mount=&from=``) or opens an upload session whose id is
unguessable and bound to the repository, image and subject that opened it.
``PATCH`` appends a chunk (``Content-Range`` must start where the upload ends,
else 416), ``GET`` reports progress, ``DELETE`` cancels and ``PUT ?digest=``
finishes. Finishing checks the digest, then links the blob into the image as a
governed push whose event carries the digest and size; the blob stays
*staged* (no artifact's member) until an allowed manifest references it.
Bytes of a chunk cut off by a disconnect are dropped again by the blob store,
so the session resumes at the last whole chunk.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
from sqlmodel import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from registry.blobs import BlobRef, StagedBlob, UploadRangeInvalid
from registry.db import Database
from registry.db.oci_models import OciBlobLink, OciUpload
from registry.errors import NotFound, PolicyDenied
from registry.formats.oci import digests, gc, records
from registry.formats.oci.auth import PULL as PULL_SCOPE
from registry.formats.oci.auth import PUSH as PUSH_SCOPE
from registry.formats.oci.auth import challenge, scope_of
from registry.formats.oci.call import Call
from registry.formats.oci.errors import OciError, upload_range, upload_unknown
from registry.formats.oci.names import split_name
from registry.governance import PULL, PUSH, Action, Resource
from registry.governance.blob_rows import commit_blob

SESSION_BYTES = 32


# -- POST: start, monolithic, mount ---------------------------------------------------


async def start(call: Call) -> Response:
    params = call.request.query_params
    mount = params.get("mount")
    if mount is not None:
        mounted = await _mount(call, digests.parse(mount), params.get("from"))
        if mounted is not None:
            return mounted
    digest = params.get("digest")
    if digest is not None:
        return await _monolithic(call, digests.parse(digest))
    return await _open_session(call)


async def _open_session(call: Call) -> Response:
    target = call.target
    session_id = secrets.token_urlsafe(SESSION_BYTES)
    upload_id = call.services.blobs.uploads.start()

    def apply(session: Session) -> None:
        repo = records.oci_repository(session, target.repository)
        records.start_upload(
            session,
            session_id,
            records.repository_id(repo),
            target.image,
            call.subject.id,
            upload_id,
        )

    action = Action(verb=PUSH, resource=call.resource(), details={"upload": "start"})
    try:
        await call.govern(action, apply)
    except BaseException:
        call.services.blobs.uploads.cancel(upload_id)
        raise
    return Response(
        status_code=202,
        headers=_progress(call, session_id, 0),
        background=BackgroundTask(gc.maybe_sweep, call.services),
    )


async def _monolithic(call: Call, digest: str) -> Response:
    """``POST ?digest=`` with the whole blob as body: one request, decided twice."""
    await call.govern(Action(verb=PUSH, resource=call.resource(), details={"upload": "single"}))
    staged = await call.services.blobs.stage(
        _body(call), expected_sha256=_sha256_or_none(digest), max_size=_limit(call)
    )
    return await _finish(call, staged, digest, session_id=None)


async def _body(call: Call) -> AsyncIterator[bytes]:
    async for chunk in call.request.stream():
        yield chunk


def _limit(call: Call) -> int:
    return call.services.settings.max_upload_size


def _sha256_or_none(digest: str) -> str | None:
    return digest if digests.algorithm_of(digest) == digests.SHA256 else None


# -- the end of every upload -------------------------------------------------------------


async def _finish(
    call: Call, staged: StagedBlob, digest: str, *, session_id: str | None
) -> Response:
    """Check a non-sha256 digest, then link the blob into the image (governed)."""
    blobs = call.services.blobs
    target = call.target
    try:
        if digests.algorithm_of(digest) != digests.SHA256:
            actual = await anyio.to_thread.run_sync(_digest_of, call, staged, digest)
            if actual != digest:
                raise OciError(
                    "DIGEST_INVALID",
                    f"the upload hashes to {actual}, not {digest}; nothing was stored",
                    detail={"expected": digest, "actual": actual},
                )
        details: dict[str, Any] = {"blob": digest, "size": staged.size}
        if session_id is not None:
            details["upload"] = "finish"

        def apply(session: Session) -> None:
            ref = commit_blob(session, blobs, staged)
            repo = records.oci_repository(session, target.repository)
            records.link_blob(
                session,
                records.repository_id(repo),
                target.image,
                digest,
                ref,
                created_by=call.subject.id,
            )
            if session_id is not None:
                records.end_upload(session, session_id)

        action = Action(
            verb=PUSH,
            resource=call.resource(digest=digest),
            artifact={"size": staged.size},
            details=details,
        )
        await call.govern(action, apply)
    finally:
        blobs.discard(staged)  # a no-op once committed
    return Response(status_code=201, headers=_created(call, digest))


def _digest_of(call: Call, staged: StagedBlob, digest: str) -> str:
    with call.services.blobs.open_staged(staged) as file:
        return digests.compute_file(file, digests.algorithm_of(digest))


def _created(call: Call, digest: str) -> dict[str, str]:
    return {
        "Location": call.location("blobs", digest),
        "Docker-Content-Digest": digest,
        "Content-Length": "0",
    }


# -- mount ----------------------------------------------------------------------------------


async def _mount(call: Call, digest: str, source: str | None) -> Response | None:
    """Link a blob another image holds; None means "upload it instead" (the spec's fallback)."""
    target = call.target
    found = await call.read(lambda session: _mount_source(session, call, digest, source))
    if found is None:
        return None
    source_name, link = found
    if not call.credentials.grants(source_name, PULL_SCOPE):
        await _challenge_for_source(call, source_name)
        return None
    source_repository, source_image = split_name(source_name)
    pull = Action(
        verb=PULL,
        resource=_resource(source_repository, source_image, digest),
        details={"blob": digest, "mount_to": target.name},
    )
    try:
        await call.govern(pull)
    except PolicyDenied:
        return None  # audited; the client may still upload the bytes itself

    def apply(session: Session) -> None:
        repo = records.oci_repository(session, target.repository)
        ref = _ref(link)
        records.link_blob(
            session,
            records.repository_id(repo),
            target.image,
            digest,
            ref,
            created_by=call.subject.id,
        )

    push = Action(
        verb=PUSH,
        resource=call.resource(digest=digest),
        artifact={"size": link.size},
        details={"blob": digest, "mount": digest, "from": source_name, "size": link.size},
    )
    await call.govern(push, apply)
    return Response(status_code=201, headers=_created(call, digest))


def _mount_source(
    session: Session, call: Call, digest: str, source: str | None
) -> tuple[str, OciBlobLink] | None:
    """The image to mount from and its link; without ``from`` any image of the same repository."""
    if source is None:
        repo = records.oci_repository(session, call.target.repository)
        link = records.any_link(session, records.repository_id(repo), digest)
        return None if link is None else (f"{call.target.repository}/{link.image}", link)
    try:
        source_repository, source_image = split_name(source)
        repo = records.oci_repository(session, source_repository)
    except (OciError, NotFound):
        return None
    link = records.blob_link(session, records.repository_id(repo), source_image, digest)
    return None if link is None else (source, link)


async def _challenge_for_source(call: Call, source_name: str) -> None:
    """A registry token without pull on the source: ask for one, if the policy would grant it.

    Clients that plan a mount (docker) ask for both scopes up front; others
    learn it here. When the policy would refuse the pull anyway, the mount
    quietly becomes an upload, as the spec allows.
    """
    source_repository, source_image = split_name(source_name)
    probe = Action(verb=PULL, resource=_resource(source_repository, source_image, None))
    decision = await anyio.to_thread.run_sync(
        call.services.governor.permits, call.subject, probe, call.context
    )
    if not decision.allow:
        return
    scopes = (
        f"{scope_of(call.target.name, PULL_SCOPE, PUSH_SCOPE)} {scope_of(source_name, PULL_SCOPE)}"
    )
    raise OciError(
        "UNAUTHORIZED",
        f"mounting from {source_name} needs a token with pull on it; request scope {scopes!r}",
        headers={"WWW-Authenticate": challenge(call.request, scopes)},
    )


def _resource(repository: str, image: str, digest: str | None) -> Resource:
    return Resource(repository=repository, format=records.FORMAT, name=image, digest=digest)


def _ref(link: OciBlobLink) -> BlobRef:
    return BlobRef(digest=link.storage_digest, size=link.size)


# -- sessions: PATCH, PUT, GET, DELETE ------------------------------------------------------


async def _session(call: Call) -> OciUpload:
    """The upload named in the path, if it belongs to this repository, image and subject."""
    session_id = call.target.arg
    target = call.target

    def lookup(session: Session) -> OciUpload | None:
        repo = records.oci_repository(session, target.repository)
        row = records.upload_session(session, session_id)
        if row is None or row.repository_id != repo.id or row.image != target.image:
            return None
        return row

    row = await call.read(lookup) if session_id else None
    if row is None or row.subject_id != call.subject.id:
        raise upload_unknown(session_id)
    return row


def _progress(call: Call, session_id: str, size: int) -> dict[str, str]:
    return {
        "Location": call.location("blobs", "uploads", session_id),
        "Range": upload_range(size),
        "Docker-Upload-UUID": session_id,
        "OCI-Chunk-Min-Length": "0",
        "Content-Length": "0",
    }


def _content_range(call: Call, size: int) -> int | None:
    """The offset a ``Content-Range: START-END`` chunk claims; 416 when it contradicts itself."""
    value = call.request.headers.get("content-range")
    if value is None:
        return None
    text = value.strip().removeprefix("bytes").strip().lstrip("=").strip()
    start_text, dash, end_text = text.partition("-")
    end_text = end_text.split("/", 1)[0]
    if not (dash and start_text.isdigit() and end_text.isdigit()):
        raise _out_of_order(call, size, f"malformed Content-Range {value!r}; send START-END")
    start, end = int(start_text), int(end_text)
    declared = call.request.headers.get("content-length")
    if end < start or (
        declared is not None and declared.isdigit() and int(declared) != end - start + 1
    ):
        raise _out_of_order(call, size, f"Content-Range {value!r} does not match the chunk length")
    return start


def _out_of_order(call: Call, size: int, message: str) -> OciError:
    return OciError(
        "BLOB_UPLOAD_INVALID",
        f"{message}; the upload holds {size} bytes, continue at byte {size}",
        status=416,
        headers=_progress(call, call.target.arg, size),
    )


async def _append(call: Call, row: OciUpload) -> int:
    uploads = call.services.blobs.uploads
    size = uploads.size(row.upload_id)
    offset = _content_range(call, size)
    try:
        return await uploads.append(
            row.upload_id, _body(call), offset=offset, max_size=_limit(call)
        )
    except UploadRangeInvalid as error:
        message = f"the chunk starts at byte {error.offset}"
        raise _out_of_order(call, uploads.size(row.upload_id), message) from None


async def patch(call: Call) -> Response:
    row = await _session(call)
    size = await _append(call, row)
    return Response(status_code=202, headers=_progress(call, row.id, size))


async def status(call: Call) -> Response:
    row = await _session(call)
    size = call.services.blobs.uploads.size(row.upload_id)
    return Response(status_code=204, headers=_progress(call, row.id, size))


async def finish(call: Call) -> Response:
    value = call.request.query_params.get("digest")
    if value is None:
        raise OciError("DIGEST_INVALID", "finish an upload with PUT ?digest=ALGORITHM:HEX")
    digest = digests.parse(value)
    row = await _session(call)
    uploads = call.services.blobs.uploads
    if _has_body(call):
        await _append(call, row)
    try:
        staged = await uploads.finish(row.upload_id, expected_sha256=_sha256_or_none(digest))
        return await _finish(call, staged, digest, session_id=row.id)
    except Exception:
        await _forget(call, row)  # the bytes are gone either way: so is the session
        raise


def _has_body(call: Call) -> bool:
    headers = call.request.headers
    length = headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "chunked" in headers.get("transfer-encoding", "").lower()


async def cancel(call: Call) -> Response:
    row = await _session(call)
    await _forget(call, row)
    return Response(status_code=204, headers={"Content-Length": "0"})


async def _forget(call: Call, row: OciUpload) -> None:
    """Drop a session: its bytes and its row (protocol state, not an artifact)."""
    call.services.blobs.uploads.cancel(row.upload_id)
    await run_in_threadpool(_drop_session, call.services.db, row.id)


def _drop_session(db: Database, session_id: str) -> None:
    with db.writer() as session:
        records.end_upload(session, session_id)
