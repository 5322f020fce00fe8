"""Errors as npm shows them: ``{"error": "..."}``, which npm prints after the status line.

npm-registry-fetch turns any error status into ``E<status>`` with the body's
``error`` appended ("403 Forbidden - PUT http://... - denied by policy:
license GPL-3.0-only is on the deny list"). A 401 carries a challenge so npm
says that it needs credentials (``npm login`` or an ``_authToken`` in .npmrc).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from registry.errors import ArbiterError, PolicyDenied, Unauthorized

CHALLENGE = 'Basic realm="arbiter", charset="UTF-8"'


def render(error: ArbiterError) -> Response:
    status = error.status
    message = error.message
    headers: dict[str, str] = {}
    if isinstance(error, Unauthorized) or (isinstance(error, PolicyDenied) and error.anonymous):
        status = 401
        headers["WWW-Authenticate"] = CHALLENGE
        if isinstance(error, PolicyDenied):
            message = f"authentication required: {error.message} (run npm login)"
    body: dict[str, Any] = {"error": message}
    if isinstance(error, PolicyDenied):
        body["reasons"] = list(error.reasons)
    return JSONResponse(body, status_code=status, headers=headers)


class NpmRoute(APIRoute):
    """A route whose registry errors are rendered as :func:`render` does."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ArbiterError as error:
                return render(error)
            except RequestValidationError as error:
                problems = "; ".join(str(e.get("msg", e)) for e in error.errors())
                return JSONResponse({"error": f"invalid request: {problems}"}, status_code=400)

        return route
