"""Errors as npm shows them: ``{"error": "..."}``, which npm prints after the status line.

npm-registry-fetch turns any error status into ``E<status>`` with the body's
``error`` appended ("403 Forbidden - PUT http://... - denied by policy:
license GPL-3.0-only is on the deny list"). A 401 carries a challenge so npm
says that it needs credentials (``npm login`` or an ``_authToken`` in .npmrc).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from registry.errors import ArbiterError, PolicyDenied, Unauthorized
from registry.web.format_routes import rendering_route

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


NpmRoute = rendering_route(
    lambda error, _request: render(error),
    lambda message: JSONResponse({"error": message}, status_code=400),
)
