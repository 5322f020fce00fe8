"""Routes that render registry errors in their client's own shape (npm JSON, PyPI text).

A format's router sets ``route_class=rendering_route(render, invalid)``:
every :class:`ArbiterError` its endpoints raise is answered by ``render``,
and a request FastAPI cannot validate by ``invalid`` with the problems in one
sentence, instead of the management API's default JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from registry.errors import ArbiterError

Render = Callable[[ArbiterError, Request], Response]
Invalid = Callable[[str], Response]


def rendering_route(render: Render, invalid: Invalid) -> type[APIRoute]:
    """An :class:`APIRoute` subclass whose errors ``render`` and ``invalid`` answer."""

    class RenderingRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                try:
                    return await handler(request)
                except ArbiterError as error:
                    return render(error, request)
                except RequestValidationError as error:
                    problems = "; ".join(str(e.get("msg", e)) for e in error.errors())
                    return invalid(f"invalid request: {problems}")

            return route

    return RenderingRoute
