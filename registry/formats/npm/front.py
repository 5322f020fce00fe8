"""``GET /npm/<repo>/<package>`` goes straight to the packument handler, around FastAPI's router.

Every ``npm install`` asks for the packument of each package in the tree, so
this is the npm API's hottest request. The npm router has a dozen routes and
the packument is its catch-all, matched last; FastAPI's matching over every
router of the app and its endpoint machinery cost about a tenth of such a
request on the 2-core machine (py-spy, ``wrk -c16``). This pure ASGI
middleware hands a packument GET to :func:`registry.formats.npm.routes.get_package`
directly and renders its errors as the npm router does; every other request
(the ``/-/`` endpoints, tarballs, writes) goes on to FastAPI. As the OCI front
door, it sits inside the request-context and server-error middleware.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from registry.errors import ArbiterError
from registry.formats.npm.errors import render
from registry.formats.npm.routes import get_package

PREFIX = "/npm/"


def packument_target(scope: Scope) -> tuple[str, str] | None:
    """``(repo, raw_name)`` when the npm router would send this request to ``get_package``.

    Its more specific GET routes all have a ``-`` path segment after the
    repository (``/-/ping``, ``/-/package/...``, ``.../-/<tarball>``), which no
    package name has; everything else under a repository is a packument or
    a version's manifest.
    """
    if scope["type"] != "http" or scope["method"] != "GET":
        return None
    path: str = scope["path"]
    if not path.startswith(PREFIX):
        return None
    repo, slash, raw_name = path[len(PREFIX) :].partition("/")
    if not (repo and slash and raw_name) or raw_name.startswith("-/") or "/-/" in raw_name:
        return None
    return repo, raw_name


class NpmFrontDoor:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = packument_target(scope)
        if target is None:
            await self.app(scope, receive, send)
            return
        try:
            response = await get_package(*target, Request(scope, receive))
        except ArbiterError as error:
            response = render(error)
        await response(scope, receive, send)
