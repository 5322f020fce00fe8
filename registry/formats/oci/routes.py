"""The ``/v2`` router: the API base, the token endpoint, the catalog, and one dispatcher.

Every other ``/v2/<name>/...`` request is parsed by :mod:`names` (OCI names
contain slashes, so endpoints are recognised from the end of the path) and
dispatched through :data:`HANDLERS`, which also says which token scope the
request needs. Errors of any kind are rendered here, in the spec's format,
with a Docker token-auth challenge on every 401.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from registry.errors import ArbiterError, PolicyDenied
from registry.formats.oci import blobs, catalog, manifests, referrers, tags, token, uploads
from registry.formats.oci.auth import DELETE, PULL, PUSH, Credentials, authenticate, challenge
from registry.formats.oci.auth import scope_of as _scope
from registry.formats.oci.call import DOCKER_API_VERSION, Call
from registry.formats.oci.errors import OciError, render, to_oci
from registry.formats.oci.names import BLOB, MANIFEST, REFERRERS, TAGS, UPLOADS, parse_target
from registry.governance import DELETE as DELETE_VERB
from registry.governance import PULL as PULL_VERB
from registry.governance import PUSH as PUSH_VERB
from registry.governance import Action
from registry.services import Services
from registry.web.deps import get_context

Handler = Callable[[Call], Awaitable[Response]]

# (endpoint, method) -> (handler, the token scope action it needs)
HANDLERS: dict[tuple[str, str], tuple[Handler, str]] = {
    (MANIFEST, "GET"): (manifests.get, PULL),
    (MANIFEST, "HEAD"): (manifests.head, PULL),
    (MANIFEST, "PUT"): (manifests.put, PUSH),
    (MANIFEST, "DELETE"): (manifests.delete, DELETE),
    (BLOB, "GET"): (blobs.get, PULL),
    (BLOB, "HEAD"): (blobs.head, PULL),
    (BLOB, "DELETE"): (blobs.delete, DELETE),
    (UPLOADS, "POST"): (uploads.start, PUSH),
    (UPLOADS, "PATCH"): (uploads.patch, PUSH),
    (UPLOADS, "PUT"): (uploads.finish, PUSH),
    (UPLOADS, "GET"): (uploads.status, PUSH),
    (UPLOADS, "DELETE"): (uploads.cancel, PUSH),
    (TAGS, "GET"): (tags.list_tags, PULL),
    (REFERRERS, "GET"): (referrers.list_referrers, PULL),
}
_VERBS = {PULL: PULL_VERB, PUSH: PUSH_VERB, DELETE: DELETE_VERB}
METHODS = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"]

router = APIRouter(prefix="/v2", include_in_schema=False)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _credentials(request: Request, services: Services) -> Credentials:
    header = request.headers.get("authorization", "")
    if not header or header.count(".") == 2:  # anonymous or a registry token: no database
        return authenticate(request, services)
    return await run_in_threadpool(authenticate, request, services)


def _scope_for(name: str, action: str) -> str:
    return _scope(name, PULL) if action == PULL else _scope(name, PULL, action)


def _error(request: Request, error: ArbiterError, scope: str | None) -> Response:
    oci = to_oci(error)
    if isinstance(error, PolicyDenied) and error.anonymous:
        oci = OciError("UNAUTHORIZED", f"authentication required: {error.message}")
    headers = {}
    if oci.code == "UNAUTHORIZED" and "WWW-Authenticate" not in oci.headers:
        headers["WWW-Authenticate"] = challenge(request, scope)
    response: Response = render(oci, headers)
    if request.method == "HEAD":  # no body on HEAD, but the same status and headers
        response = Response(status_code=response.status_code, headers=dict(response.headers))
        del response.headers["content-length"]
    return response


async def _ensure_scope(call: Call, action: str, scope: str) -> None:
    """A registry token must carry the request's scope; ask for it, or let the policy refuse."""
    if call.credentials.grants(call.target.name, action):
        return
    probe = Action(verb=_VERBS[action], resource=call.resource())
    decision = await run_in_threadpool(
        call.services.governor.permits, call.subject, probe, call.context
    )
    if not decision.allow:
        await call.govern(probe)  # the policy refuses: audited, raises with its reasons
    raise OciError(
        "UNAUTHORIZED",
        f"the registry token does not grant {action} on {call.target.name}; request one for "
        f"scope {scope!r}",
        headers={"WWW-Authenticate": challenge(call.request, scope)},
    )


@router.get("/")
@router.get("")
async def base(request: Request) -> Response:
    """The API version check; anonymous callers are told where to get a token."""
    services = _services(request)
    try:
        credentials = await _credentials(request, services)
        if credentials.subject.is_anonymous:
            raise OciError("UNAUTHORIZED", "authentication required: log in to use the registry")
    except ArbiterError as error:
        return _with_version(_error(request, error, None))
    response: Response = JSONResponse({})
    return _with_version(response)


@router.api_route("/token", methods=["GET", "POST"])
async def token_endpoint(request: Request) -> Response:
    return await token.token(request, _services(request), get_context(request))


@router.get("/_catalog")
async def catalog_endpoint(request: Request) -> Response:
    services = _services(request)
    try:
        credentials = await _credentials(request, services)
        params = request.query_params
        response = await catalog.catalog(
            services, credentials.subject, get_context(request), params.get("n"), params.get("last")
        )
    except ArbiterError as error:
        response = _error(request, error, "registry:catalog:*")
    return _with_version(response)


@router.api_route("/{path:path}", methods=METHODS)
async def dispatch(path: str, request: Request) -> Response:
    services = _services(request)
    scope: str | None = None
    try:
        target = parse_target(path)
        entry = HANDLERS.get((target.endpoint, request.method))
        if entry is None or (
            target.endpoint == UPLOADS and (request.method == "POST") == bool(target.arg)
        ):
            raise OciError(
                "UNSUPPORTED", f"{request.method} is not supported on /v2/{path}", status=405
            )
        handler, action = entry
        scope = _scope_for(target.name, action)
        credentials = await _credentials(request, services)
        call = Call(request, services, credentials, get_context(request), target)
        await _ensure_scope(call, action, scope)
        response = await handler(call)
    except ArbiterError as error:
        response = _error(request, error, scope)
    return _with_version(response)


def _with_version(response: Response) -> Response:
    response.headers[DOCKER_API_VERSION[0]] = DOCKER_API_VERSION[1]
    return response
