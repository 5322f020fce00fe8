"""``/v2/<name>/...`` requests go straight to the OCI dispatcher, around FastAPI's router.

Every image pull starts with a manifest GET, so this is the registry's hottest
path. Those requests already have one dispatcher of their own
(:func:`registry.formats.oci.routes.dispatch`): it parses the path, checks the
token, calls the handler and renders every error in the distribution spec's
format. FastAPI's route matching over every router of the app, its dependency
solving and its exception middleware add nothing to that, yet measured on the
2-core machine they cost the event loop more than the dispatch itself. This
pure ASGI middleware hands those requests to the dispatcher directly; the API
base, the token endpoint and the catalog stay FastAPI routes. It sits inside
the request-context middleware (request id, access log, metrics) and inside
Starlette's server-error middleware (an unexpected exception is still a 500).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from registry.formats.oci.routes import dispatch

PREFIX = "/v2/"
FASTAPI_ROUTES = frozenset({"/v2/", "/v2/token", "/v2/_catalog"})


class OciFrontDoor:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX) or path in FASTAPI_ROUTES:
            await self.app(scope, receive, send)
            return
        response = await dispatch(path[len(PREFIX) :], Request(scope, receive))
        await response(scope, receive, send)
