"""Python repositories under ``/pypi/{repo}/``: what pip, uv and twine talk to.

=========================================  =======================================
``POST /pypi/{repo}/`` (or ``/legacy/``)    upload (twine, ``uv publish``)
``GET /pypi/{repo}/simple/``                the project list (PEP 503 / PEP 691)
``GET /pypi/{repo}/simple/{project}/``      a project's files; other spellings redirect
``GET /pypi/{repo}/files/{p}/{v}/{file}``   a distribution, or ``{file}.metadata`` (PEP 658)
``GET /pypi/{repo}/pypi/{project}/json``    the JSON project API (also ``/{version}/json``)
``POST /pypi/{repo}/pypi/{p}/{v}/yank``     yank a release (JSON ``{"reason": "..."}``)
``POST /pypi/{repo}/pypi/{p}/{v}/unyank``   undo it
``GET /pypi/{repo}/-/denied/{reasons}``     403 naming a refusal's reasons (for pip, uv)
=========================================  =======================================

Routes translate requests into governed actions and render the result; each
read resolves its rows, is decided and audited in one worker-thread hop.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from policies.inputs import TagChange
from registry.auth import Subject
from registry.errors import BadRequest, NotFound
from registry.formats.pypi import jsonapi, lookups, records, simple
from registry.formats.pypi.errors import PypiRoute
from registry.formats.pypi.lookups import FORMAT, FileRow
from registry.formats.pypi.names import normalize, parse_version
from registry.formats.pypi.upload import upload as run_upload
from registry.governance import PULL, TAG, Action, RequestContext, Resource, Serving
from registry.packages.reads import governed_read
from registry.services import Services
from registry.web import denial_links
from registry.web.deps import ContextDep, ServicesDep, SubjectDep

T = TypeVar("T")
MAX_YANK_BODY = 16 * 1024

router = APIRouter(prefix="/pypi", tags=["pypi"], route_class=PypiRoute)


def _prefix(request: Request, repo: str) -> str:
    return f"{request.scope.get('root_path', '')}/pypi/{repo}"


def _resource(repo: str, **parts: Any) -> Resource:
    return Resource(repository=repo, format=FORMAT, **parts)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _missing(message: str) -> Serving:
    return Serving(error=NotFound(message))


# -- uploads -----------------------------------------------------------------------------


@router.post("/{repo}")
@router.post("/{repo}/")
@router.post("/{repo}/legacy/")
async def upload(
    repo: str, request: Request, services: ServicesDep, subject: SubjectDep, context: ContextDep
) -> Response:
    """The legacy upload API; 200 with an empty body, as PyPI answers."""
    await run_upload(repo, request, services, subject, context)
    return PlainTextResponse("OK\n")


# -- the simple API ----------------------------------------------------------------------


def _negotiated(request: Request) -> str:
    media = simple.negotiate(request.headers.get("accept"))
    if media is None:
        raise _NotAcceptable()
    return media


class _NotAcceptable(BadRequest):
    status = 406
    code = "NOT_ACCEPTABLE"

    def __init__(self) -> None:
        super().__init__(
            f"acceptable answers are {simple.JSON_V1}, {simple.HTML_V1} and {simple.HTML}"
        )


def _page(body: bytes, media: str) -> Response:
    return Response(body, media_type=simple.content_type(media), headers={"Vary": "Accept"})


@router.get("/{repo}/simple")
async def index_redirect(repo: str, request: Request) -> Response:
    return RedirectResponse(f"{_prefix(request, repo)}/simple/", status_code=301)


@router.get("/{repo}/simple/")
async def index(repo: str, request: Request) -> Response:
    media = _negotiated(request)
    _subject, names = await governed_read(
        request,
        _services(request),
        lambda conn: lookups.project_names(conn, repo),
        lambda _names: Action(verb=PULL, resource=_resource(repo), details={"listing": True}),
    )
    if media == simple.JSON_V1:
        return _page(simple.index_json(names), media)
    return _page(simple.index_html(_prefix(request, repo), names), media)


@router.get("/{repo}/simple/{project}")
async def project_redirect(repo: str, project: str, request: Request) -> Response:
    return RedirectResponse(f"{_prefix(request, repo)}/simple/{normalize(project)}/", 301)


@router.get("/{repo}/simple/{project}/")
async def project_page(repo: str, project: str, request: Request) -> Response:
    name = normalize(project)
    if name != project:
        return RedirectResponse(f"{_prefix(request, repo)}/simple/{name}/", status_code=301)
    media = _negotiated(request)
    missing = _missing(f"project {name} not found in {repo}")
    _subject, files = await governed_read(
        request,
        _services(request),
        lambda conn: lookups.project_files(conn, repo, name),
        lambda _files: Action(
            verb=PULL, resource=_resource(repo, name=name), details={"listing": True}
        ),
        lambda found: missing if found is None else Serving(),
    )
    assert files is not None
    prefix = _prefix(request, repo)
    if media == simple.JSON_V1:
        return _page(simple.project_json(prefix, name, files), media)
    return _page(simple.project_html(prefix, name, files), media)


# -- files ------------------------------------------------------------------------------


@router.get("/{repo}/files/{project}/{version}/{filename}")
async def download(
    repo: str, project: str, version: str, filename: str, request: Request
) -> Response:
    """A distribution (a counted download) or its metadata file (not counted)."""
    name = normalize(project)
    is_metadata = filename.endswith(records.METADATA_SUFFIX)

    def action(row: FileRow | None) -> Action:
        details: dict[str, Any] = {"metadata": True, "listing": True} if is_metadata else {}
        return Action(
            verb=PULL,
            resource=_resource(
                repo,
                name=name,
                version=version,
                file=filename,
                digest=row.digest if row is not None else None,
            ),
            details=details,
        )

    def serving(row: FileRow | None) -> Serving:
        if row is None:
            return _missing(f"file {filename} of {name} {version} not found in {repo}")
        return Serving(download=None if is_metadata else row.version_id)

    services = _services(request)
    _subject, row = await governed_read(
        request,
        services,
        lambda conn: lookups.one_file(conn, repo, name, version, filename),
        action,
        serving,
    )
    assert row is not None
    media_type = records.METADATA_MEDIA_TYPE if is_metadata else "application/octet-stream"
    return FileResponse(
        services.blobs.path_of(row.digest),
        media_type=media_type,
        headers={"ETag": f'"{row.sha256}"', "X-Checksum-Sha256": row.sha256},
    )


@router.get("/{repo}/-/denied/{reasons}")
async def denied(repo: str, reasons: str, proof: str, request: Request) -> Response:
    """Where a refused pip or uv request is sent, so that they print the reasons."""
    data = _services(request).settings.data
    if not denial_links.verified(data, repo, reasons, proof):
        raise NotFound("no such denial")
    return PlainTextResponse(
        f"denied by policy: {reasons.replace('-', ' ')}\n"
        "The registry's audit log holds the policy's exact words.\n",
        status_code=403,
    )


# -- JSON API -------------------------------------------------------------------------


async def _releases(
    repo: str, name: str, version: str | None, request: Request
) -> list[lookups.Release]:
    def missing(found: list[lookups.Release] | None) -> Serving:
        if found is None:
            return _missing(f"project {name} not found in {repo}")
        if version is not None and all(r.version != version for r in found):
            return _missing(f"release {name} {version} not found in {repo}")
        return Serving()

    _subject, found = await governed_read(
        request,
        _services(request),
        lambda conn: lookups.releases(conn, repo, name),
        lambda _found: Action(
            verb=PULL,
            resource=_resource(repo, name=name, version=version),
            details={"listing": True},
        ),
        missing,
    )
    assert found is not None
    return found


@router.get("/{repo}/pypi/{project}/json")
async def project_json(repo: str, project: str, request: Request) -> Response:
    name = normalize(project)
    found = await _releases(repo, name, None, request)
    return JSONResponse(jsonapi.project(_prefix(request, repo), name, found))


@router.get("/{repo}/pypi/{project}/{version}/json")
async def release_json(repo: str, project: str, version: str, request: Request) -> Response:
    name = normalize(project)
    version = str(parse_version(version))
    found = await _releases(repo, name, version, request)
    return JSONResponse(jsonapi.release(_prefix(request, repo), name, found, version))


# -- yanking (PEP 592) ------------------------------------------------------------------


async def _reason(request: Request) -> str:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_YANK_BODY:
            raise BadRequest(f"the body is larger than {MAX_YANK_BODY} bytes")
    if not body.strip():
        return ""
    try:
        document = json.loads(body)
    except ValueError:
        raise BadRequest('send JSON such as {"reason": "broken on Windows"}') from None
    reason = document.get("reason", "") if isinstance(document, dict) else None
    if not isinstance(reason, str):
        raise BadRequest('"reason" must be a string')
    return reason


async def _set_yanked(
    repo: str,
    project: str,
    version: str,
    reason: str | None,
    services: Services,
    subject: Subject,
    context: RequestContext,
) -> Response:
    name = normalize(project)
    version = str(parse_version(version))
    details: dict[str, Any] = {"tag": "yanked"}
    if reason is None:
        details["removed"] = True
    else:
        details["reason"] = reason
    action = Action(
        verb=TAG,
        resource=_resource(repo, name=name, version=version),
        tag=TagChange(name="yanked"),
        details=details,
    )

    def apply(session: Session) -> int:
        return records.set_yanked(session, repo, name, version, reason)

    files = await run_in_threadpool(services.governor.govern, subject, action, context, apply)
    body = {"project": name, "version": version, "yanked": reason is not None, "files": files}
    if reason is not None:
        body["reason"] = reason
    return JSONResponse(body)


@router.post("/{repo}/pypi/{project}/{version}/yank")
async def yank(
    repo: str,
    project: str,
    version: str,
    request: Request,
    services: ServicesDep,
    subject: SubjectDep,
    context: ContextDep,
) -> Response:
    reason = await _reason(request)
    return await _set_yanked(repo, project, version, reason, services, subject, context)


@router.post("/{repo}/pypi/{project}/{version}/unyank")
async def unyank(
    repo: str,
    project: str,
    version: str,
    services: ServicesDep,
    subject: SubjectDep,
    context: ContextDep,
) -> Response:
    return await _set_yanked(repo, project, version, None, services, subject, context)
