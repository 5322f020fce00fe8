"""The generic format: any file under ``/generic/{repo}/{package}/{version}/{filename}``.

Routes translate the request into a governed action and render the result;
the work happens in the governance layer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy import Connection
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from registry.blobs import BlobRef
from registry.db.models import ArtifactFile, Version
from registry.errors import BadRequest, NotFound, PayloadTooLarge
from registry.formats.generic import records
from registry.formats.generic.paths import GenericPath, parse
from registry.governance import DELETE, PULL, PUSH, Action, Resource, Serving
from registry.governance.uploads import governed_push
from registry.web.deps import ContextDep, ServicesDep, SubjectDep
from registry.web.hops import governed

FORMAT = "generic"
CHECKSUM_HEADER = "X-Checksum-Sha256"
PROVENANCE_HEADERS = {
    "x-arbiter-build-id": "build_id",
    "x-arbiter-pipeline": "pipeline",
    "x-arbiter-commit": "commit",
    "x-arbiter-source": "source",
}

router = APIRouter(prefix="/generic", tags=["generic"])


def _resource(repo: str, path: GenericPath, digest: str | None = None) -> Resource:
    return Resource(
        repository=repo,
        format=FORMAT,
        name=path.package,
        version=path.version,
        file=path.filename,
        digest=digest,
    )


def _file_path(path: str) -> GenericPath:
    parsed = parse(path)
    if parsed.filename is None:
        raise BadRequest("uploads and downloads need PACKAGE/VERSION/FILENAME")
    return parsed


def _expected_sha256(request: Request) -> str | None:
    value = request.headers.get(CHECKSUM_HEADER)
    if value is None:
        return None
    value = value.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise BadRequest(f"{CHECKSUM_HEADER} must be 64 hexadecimal characters")
    return value


def _provenance(request: Request) -> dict[str, str]:
    return {
        key: request.headers[h] for h, key in PROVENANCE_HEADERS.items() if h in request.headers
    }


@router.put("/{repo}/{path:path}", status_code=201)
async def upload(
    repo: str,
    path: str,
    request: Request,
    services: ServicesDep,
    subject: SubjectDep,
    context: ContextDep,
) -> JSONResponse:
    target = _file_path(path)
    expected = _expected_sha256(request)
    limit = services.settings.max_upload_size
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is larger than the maximum upload size of {limit} bytes")
    provenance = _provenance(request)
    action = Action(verb=PUSH, resource=_resource(repo, target), details={"provenance": provenance})
    media_type = request.headers.get("content-type", "application/octet-stream")

    def record(session: Session, ref: BlobRef) -> dict[str, Any]:
        row = records.add_file(
            session,
            repo,
            target.package,
            target.version or "",
            target.filename or "",
            ref,
            created_by=subject.id,
            media_type=media_type,
            provenance=provenance,
        )
        return {"path": f"{repo}/{path}", "digest": row.blob_digest, "size": row.size}

    body = await governed_push(
        services.governor,
        services.blobs,
        subject,
        action,
        context,
        request.stream(),
        record,
        expected_sha256=expected,
        max_size=limit,
        media_type=media_type,
    )
    body["sha256"] = body["digest"].removeprefix("sha256:")
    return JSONResponse(body, status_code=201)


# A file's rows, or why there is none (audited as a failed pull once decided).
_Found = tuple[Version, ArtifactFile] | NotFound


async def _governed_file(
    repo: str, path: str, services: Any, subject: Any, context: Any, *, count: bool
) -> tuple[str, int, str]:
    """Read the file's rows, then decide and audit its pull (a counted one for GET)."""
    target = _file_path(path)

    def read(conn: Connection) -> _Found:
        with Session(bind=conn) as session:
            try:
                return records.find_file(
                    session, repo, target.package, target.version or "", target.filename or ""
                )
            except NotFound as missing:
                return missing

    def serving(found: _Found) -> Serving:
        if isinstance(found, NotFound):
            return Serving(error=found)
        return Serving(download=found[0].id if count else None)

    action = Action(verb=PULL, resource=_resource(repo, target))
    found = await governed(
        services,
        lambda: services.governor.start_read(subject, context, read, lambda _f: action, serving),
    )
    assert not isinstance(found, NotFound)
    row = found[1]
    return row.blob_digest, row.size, row.media_type


def _file_headers(digest: str, size: int) -> dict[str, str]:
    sha = digest.removeprefix("sha256:")
    return {
        CHECKSUM_HEADER: sha,
        "ETag": f'"{sha}"',
        "Content-Length": str(size),
        "Docker-Content-Digest": digest,
    }


@router.get("/{repo}/{path:path}")
async def download(
    repo: str, path: str, services: ServicesDep, subject: SubjectDep, context: ContextDep
) -> Response:
    parsed = parse(path)
    if parsed.filename is None:
        return await _listing(repo, parsed, services, subject, context)
    digest, size, media_type = await _governed_file(
        repo, path, services, subject, context, count=True
    )
    return FileResponse(
        services.blobs.path_of(digest),
        media_type=media_type,
        headers=_file_headers(digest, size),
        filename=parsed.filename,
        content_disposition_type="attachment",
    )


@router.head("/{repo}/{path:path}")
async def head(
    repo: str, path: str, services: ServicesDep, subject: SubjectDep, context: ContextDep
) -> Response:
    digest, size, media_type = await _governed_file(
        repo, path, services, subject, context, count=False
    )
    return Response(status_code=200, media_type=media_type, headers=_file_headers(digest, size))


async def _listing(
    repo: str, target: GenericPath, services: Any, subject: Any, context: Any
) -> JSONResponse:
    def apply(session: Session) -> dict[str, Any]:
        if target.version is None:
            return {
                "package": target.package,
                "versions": records.list_versions(session, repo, target.package),
            }
        files = records.list_files(session, repo, target.package, target.version)
        return {"package": target.package, "version": target.version, "files": files}

    action = Action(verb=PULL, resource=_resource(repo, target), details={"listing": True})
    body = await run_in_threadpool(services.governor.govern, subject, action, context, apply)
    return JSONResponse(body)


@router.delete("/{repo}/{path:path}", status_code=204)
async def delete(
    repo: str, path: str, services: ServicesDep, subject: SubjectDep, context: ContextDep
) -> Response:
    target = parse(path)
    if target.version is None:
        raise BadRequest("delete a version (PACKAGE/VERSION) or a file (PACKAGE/VERSION/FILENAME)")

    def apply(session: Session) -> None:
        if target.filename is None:
            records.delete_version(session, repo, target.package, target.version or "")
        else:
            records.delete_file(
                session, repo, target.package, target.version or "", target.filename
            )

    action = Action(verb=DELETE, resource=_resource(repo, target))
    await run_in_threadpool(services.governor.govern, subject, action, context, apply)
    return Response(status_code=204)
