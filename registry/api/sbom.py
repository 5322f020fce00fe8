"""SBOMs of artifact versions: ``GET`` ours (JSON or XML by Accept), ``PUT`` the producer's.

Reading needs what pulling from the repository needs (the policy decides,
at repository level, so an artifact whose findings block its pull can still
show why), and is audited as a listing. Uploading is a governed push of the artifact; the work is in
:mod:`registry.supplychain.producer`.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from registry.errors import BadRequest, NotFound, PayloadTooLarge
from registry.governance import PULL, Action, Resource
from registry.governance.facts import find_repository
from registry.supplychain import documents, producer, storage
from registry.supplychain.models import PRODUCER
from registry.supplychain.sbom.validate import MAX_DOCUMENT
from registry.web.deps import ContextDep, ServicesDep, SubjectDep

router = APIRouter(prefix="/sbom", tags=["sbom"])


def split(path: str, what: str) -> tuple[str, str]:
    """``NAME/VERSION`` (NAME may hold slashes) from the rest of the path."""
    name, _, version = path.strip("/").rpartition("/")
    if not name or not version:
        raise BadRequest(f"use /api/v1/{what}/REPOSITORY/NAME/VERSION")
    return name, version


def may_read(
    services: ServicesDep, subject: SubjectDep, context: ContextDep, repo: str, what: str
) -> None:
    """Those the policy lets pull from ``repo`` may read its SBOMs and findings.

    Decided and recorded like a listing: a ``pull`` of the repository with
    ``listing`` set, so the read is evidence (and retention's "pulled
    recently" does not count it); a refusal raises PolicyDenied.
    """
    action = Action(
        verb=PULL, resource=Resource(repository=repo), details={"listing": True, "reads": what}
    )
    services.governor.govern(subject, action, context)


def _wants_xml(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "xml"
    accept = request.headers.get("accept", "")
    return "xml" in accept and "json" not in accept


@router.get("/{repository}/{path:path}")
async def get_sbom(
    repository: str,
    path: str,
    request: Request,
    services: ServicesDep,
    subject: SubjectDep,
    context: ContextDep,
    source: Literal["generated", "producer"] = "generated",
    file: str | None = None,
    format: Literal["json", "xml"] | None = None,
) -> Response:
    """The version's CycloneDX SBOM (several files' SBOMs merged; ``file`` picks one)."""
    name, version = split(path, "sbom")
    await run_in_threadpool(may_read, services, subject, context, repository, "sbom")
    want = documents.XML if _wants_xml(request, format) else documents.JSON

    def load() -> documents.Served:
        with services.db.reader() as session:
            find_repository(session, repository)
            version_id = storage.resolve_version_id(session, repository, name, version)
            if version_id is None:
                raise NotFound(f"version {name}/{version} not found in {repository}")
            chosen = documents.select_documents(session, version_id, source=source, file=file)
            return documents.render(
                services.blobs, chosen, want=want, repository=repository, name=name, version=version
            )

    served = await run_in_threadpool(load)
    return Response(served.body, media_type=served.media_type)


@router.put("/{repository}/{path:path}", status_code=201)
async def put_sbom(
    repository: str,
    path: str,
    request: Request,
    services: ServicesDep,
    subject: SubjectDep,
    context: ContextDep,
) -> JSONResponse:
    """Keep the producer's CycloneDX SBOM beside ours (a governed push; 422 when invalid)."""
    name, version = split(path, "sbom")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_DOCUMENT:
        raise PayloadTooLarge(f"an SBOM may be at most {MAX_DOCUMENT} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_DOCUMENT:
            raise PayloadTooLarge(f"an SBOM may be at most {MAX_DOCUMENT} bytes")
    stored = await producer.upload(
        services.governor,
        services.blobs,
        subject,
        context,
        repository=repository,
        name=name,
        version=version,
        body=bytes(body),
        content_type=request.headers.get("content-type", ""),
    )
    return JSONResponse(stored, status_code=201)


__all__ = ["PRODUCER", "may_read", "router", "split"]
