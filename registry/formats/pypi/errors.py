"""Errors as Python packaging clients show them: the status and one plain-text sentence.

``uv publish`` prints the body ("Server says: ..."), ``twine upload
--verbose`` prints it too; pip and twine without ``--verbose`` print only the
status line (PyPI puts its message in the reason phrase, which ASGI servers
cannot set). Every 401 carries a Basic challenge, so pip and uv retry with
the credentials of the index URL, keyring or netrc.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

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
            message = f"authentication required: {error.message}"
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


class PypiRoute(APIRoute):
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
                return PlainTextResponse(f"invalid request: {problems}\n", status_code=400)

        return route
