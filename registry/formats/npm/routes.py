"""npm repositories under ``/npm/{repo}/``: the registry API the npm CLI uses.

Set ``registry=http://HOST/npm/REPO/`` (and ``//HOST/npm/REPO/:_authToken=TOKEN``)
in ``.npmrc``; an Arbiter API token is the npm token.

====================================================  =================================
``GET /npm/{repo}/{name}``                            packument (abbreviated for
                                                      ``application/vnd.npm.install-v1+json``)
``GET /npm/{repo}/{name}/{version}``                  one version's manifest
``GET /npm/{repo}/{name}/-/{file}.tgz``               tarball
``PUT /npm/{repo}/{name}``                            publish, or deprecate (no tarball)
``PUT /npm/{repo}/{name}/-rev/{rev}``                 change (``npm unpublish pkg@v``)
``DELETE /npm/{repo}/{name}/-rev/{rev}``              unpublish every version
``DELETE /npm/{repo}/{name}/-/{file}/-rev/{rev}``     unpublish the tarball's version
``GET|PUT|DELETE /npm/{repo}/-/package/{name}/dist-tags[/{tag}]``  ``npm dist-tag``
``PUT /npm/{repo}/-/user/org.couchdb.user:{user}``    ``npm login`` (password: an API token)
``GET /npm/{repo}/-/whoami``, ``GET /npm/{repo}/-/ping``
====================================================  =================================

Scoped names arrive as ``@scope%2fname`` or ``@scope/name``; both work.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from registry.errors import BadRequest, NotFound, Unauthorized
from registry.formats.npm import changes, lookups, packument
from registry.formats.npm.errors import NpmRoute
from registry.formats.npm.lookups import FORMAT, PackageState, Snapshot
from registry.formats.npm.names import basename, check_name, decode_name, is_version
from registry.formats.npm.publish import put_package
from registry.formats.npm.rendered import RenderedDocuments
from registry.governance import PULL, Action, Resource, Serving
from registry.packages.reads import governed_read
from registry.services import Services
from registry.web.deps import ContextDep, ServicesDep, SubjectDep

MAX_SMALL_BODY = 64 * 1024
COUCH_USER = "org.couchdb.user:"

router = APIRouter(prefix="/npm", tags=["npm"], route_class=NpmRoute)


def _base(request: Request, repo: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/npm/{repo}"


def _name(raw: str) -> str:
    return check_name(decode_name(raw))


async def _small_json(request: Request) -> Any:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_SMALL_BODY:
            raise BadRequest(f"the body is larger than {MAX_SMALL_BODY} bytes")
    try:
        return json.loads(body)
    except ValueError:
        raise BadRequest("the body is not JSON") from None


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _read_package(
    request: Request, repo: str, name: str, version: str | None = None
) -> Snapshot:
    """Read the package, then decide and audit the read (a listing pull), in one hop."""

    def resolved(found: Snapshot | None) -> str | None:
        return found.tags.get(version, version) if found is not None and version else version

    def action(found: Snapshot | None) -> Action:
        resource = Resource(repository=repo, format=FORMAT, name=name, version=resolved(found))
        return Action(verb=PULL, resource=resource, details={"listing": True})

    def serving(found: Snapshot | None) -> Serving:
        if found is None:
            return Serving(error=NotFound(f"{name} is not in this registry"))
        wanted = resolved(found)
        if wanted is not None and not found.has_version(wanted):
            return Serving(error=NotFound(f"{name}@{version} is not in this registry"))
        return Serving()

    _subject, found = await governed_read(
        request,
        _services(request),
        lambda conn: lookups.snapshot(conn, repo, name),
        action,
        serving,
    )
    assert found is not None
    return found


def _documents(request: Request) -> RenderedDocuments:
    """The app's rendered packuments (one per app, made on first use)."""
    state = request.app.state
    documents: RenderedDocuments | None = getattr(state, "npm_documents", None)
    if documents is None:
        documents = state.npm_documents = RenderedDocuments()
    return documents


# -- the /-/ endpoints (matched before package names, which never start with "-") ------


@router.get("/{repo}/-/ping")
async def ping(repo: str, services: ServicesDep) -> Response:
    def check() -> None:
        with services.db.read_engine.connect() as conn:
            lookups.repository_exists(conn, repo)

    await run_in_threadpool(check)
    return JSONResponse({})


@router.get("/{repo}/-/whoami")
async def whoami(repo: str, subject: SubjectDep) -> Response:
    if subject.is_anonymous:
        raise Unauthorized("not logged in: run npm login, or set _authToken in .npmrc")
    return JSONResponse({"username": subject.id})


@router.post("/{repo}/-/v1/login")
async def web_login(repo: str) -> Response:
    """Web login is not offered; npm then asks for a user name and password (a token)."""
    return JSONResponse(
        {"error": "web login is not supported; log in with your user name and an API token"},
        status_code=404,
    )


@router.put("/{repo}/-/user/{user_id}")
async def login(repo: str, user_id: str, request: Request, services: ServicesDep) -> Response:
    """``npm login``: the password is an Arbiter API token, and becomes npm's token."""
    body = await _small_json(request)
    name = user_id.removeprefix(COUCH_USER)
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(password, str) or not password:
        raise Unauthorized("log in with your user name and an Arbiter API token as password")
    header = "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()
    subject = await run_in_threadpool(services.authenticator.authenticate, header)
    return JSONResponse(
        {"ok": True, "id": f"{COUCH_USER}{subject.id}", "rev": "1", "token": password},
        status_code=201,
    )


@router.get("/{repo}/-/user/{user_id}")
async def user(repo: str, user_id: str, subject: SubjectDep) -> Response:
    name = user_id.removeprefix(COUCH_USER)
    if subject.is_anonymous or subject.id != name:
        raise Unauthorized(f"log in as {name} to read this user")
    return JSONResponse({"_id": f"{COUCH_USER}{name}", "name": name, "type": "user", "roles": []})


@router.delete("/{repo}/-/user/token/{token}")
async def logout(repo: str, token: str) -> Response:
    """``npm logout``: npm forgets the token; revoke it with ``arbiter`` to end it everywhere."""
    return JSONResponse({"ok": True})


@router.get("/{repo}/-/package/{raw_name:path}/dist-tags")
async def list_tags(repo: str, raw_name: str, request: Request) -> Response:
    found = await _read_package(request, repo, _name(raw_name))
    return JSONResponse(found.tags)


@router.put("/{repo}/-/package/{raw_name:path}/dist-tags/{tag}")
async def add_tag(
    repo: str,
    raw_name: str,
    tag: str,
    request: Request,
    services: ServicesDep,
    subject: SubjectDep,
    context: ContextDep,
) -> Response:
    version = await _small_json(request)
    if not isinstance(version, str):
        raise BadRequest('send the version as a JSON string, e.g. "1.2.3"')
    name = _name(raw_name)
    await changes.move_tag(repo, name, tag, version, services, subject, context)
    return JSONResponse({"ok": True, "id": name, tag: version}, status_code=201)


@router.delete("/{repo}/-/package/{raw_name:path}/dist-tags/{tag}")
async def delete_tag(
    repo: str,
    raw_name: str,
    tag: str,
    services: ServicesDep,
    subject: SubjectDep,
    context: ContextDep,
) -> Response:
    name = _name(raw_name)
    await changes.remove_tag(repo, name, tag, services, subject, context)
    return JSONResponse({"ok": True, "id": name})


# -- tarballs -----------------------------------------------------------------------------


def _version_of(name: str, filename: str) -> str:
    prefix = basename(name) + "-"
    if not (filename.startswith(prefix) and filename.endswith(".tgz")):
        raise NotFound(f"{filename} is not a tarball of {name}")
    version = filename[len(prefix) : -len(".tgz")]
    if not is_version(version):
        raise NotFound(f"{filename} is not a tarball of {name}")
    return version


_Found = tuple[int, lookups.Tarball] | None


@router.get("/{repo}/{raw_name:path}/-/{filename}")
async def tarball(repo: str, raw_name: str, filename: str, request: Request) -> Response:
    name = _name(raw_name)
    version = _version_of(name, filename)

    def action(found: _Found) -> Action:
        resource = Resource(
            repository=repo,
            format=FORMAT,
            name=name,
            version=version,
            file=filename,
            digest=found[1].digest if found else None,
        )
        return Action(verb=PULL, resource=resource)

    def serving(found: _Found) -> Serving:
        if found is None:
            return Serving(error=NotFound(f"{name}@{version} is not in this registry"))
        return Serving(download=found[0])

    services = _services(request)
    _subject, found = await governed_read(
        request,
        services,
        lambda conn: lookups.tarball(conn, repo, name, version, filename),
        action,
        serving,
    )
    assert found is not None
    return FileResponse(
        services.blobs.path_of(found[1].digest),
        media_type="application/octet-stream",
        headers={"ETag": f'"{found[1].digest.removeprefix("sha256:")}"'},
    )


@router.delete("/{repo}/{raw_name:path}/-/{filename}/-rev/{rev}")
async def delete_tarball(
    repo: str,
    raw_name: str,
    filename: str,
    rev: str,
    services: ServicesDep,
    subject: SubjectDep,
    context: ContextDep,
) -> Response:
    """The last step of ``npm unpublish pkg@v``: the version is usually gone already."""
    name = _name(raw_name)
    version = _version_of(name, filename)
    state = await changes.current_state(services, repo, name)
    if state.version(version) is not None:
        await changes.unpublish(repo, name, version, services, subject, context, state)
    return JSONResponse({"ok": True})


# -- packages --------------------------------------------------------------------------


@router.put("/{repo}/{raw_name:path}/-rev/{rev}")  # npm deprecate, unpublish of a version
async def update_package(
    repo: str,
    raw_name: str,
    request: Request,
    services: ServicesDep,
    subject: SubjectDep,
    context: ContextDep,
) -> Response:
    """A publish, or a changed document of the package: the same governed road."""
    name = _name(raw_name)
    result = await put_package(repo, name, request, services, subject, context)
    return JSONResponse(result, status_code=201)


@router.delete("/{repo}/{raw_name:path}/-rev/{rev}")
async def delete_package(
    repo: str,
    raw_name: str,
    rev: str,
    services: ServicesDep,
    subject: SubjectDep,
    context: ContextDep,
) -> Response:
    """``npm unpublish pkg --force``: every version, each a governed delete."""
    name = _name(raw_name)
    state = await changes.current_state(services, repo, name)
    for row in list(state.versions):
        await changes.unpublish(repo, name, row.version, services, subject, context, state)
    return JSONResponse({"ok": True, "id": name})


def _split_version(raw: str) -> tuple[str, str | None]:
    """``@s/p/1.0.0`` or ``p/1.0.0`` -> (name, version); a bare name -> (name, None)."""
    decoded = decode_name(raw)
    parts = decoded.split("/")
    scoped = decoded.startswith("@")
    if len(parts) == (3 if scoped else 2):
        return "/".join(parts[:-1]), parts[-1]
    return decoded, None


@router.get("/{repo}/{raw_name:path}")
async def get_package(repo: str, raw_name: str, request: Request) -> Response:
    raw, version = _split_version(raw_name)
    name = check_name(raw)
    base = _base(request, repo)
    if version is not None:
        state = (await _read_package(request, repo, name, version=version)).state
        resolved = state.tags.get(version, version)
        row = state.version(resolved)
        if row is None:
            raise NotFound(f"{name}@{version} is not in this registry")
        document = packument.full(base, PackageState(name, [row], {}))["versions"][resolved]
        return JSONResponse(document)
    found = await _read_package(request, repo, name)
    if packument.wants_abbreviated(request.headers.get("accept")):
        key, render, media_type = "abbreviated", packument.abbreviated_body, packument.ABBREVIATED
    else:
        key, render, media_type = "full", packument.full_body, JSONResponse.media_type
    body = _documents(request).body(
        (repo, name, base, key), found.source, lambda: render(base, found.state)
    )
    return Response(body, media_type=media_type)


# Registered last: this path would also match every more specific PUT above.
router.put("/{repo}/{raw_name:path}")(update_package)
