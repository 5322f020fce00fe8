"""Errors as Python packaging clients show them: the status and one plain-text sentence.

``uv publish`` prints the body ("Server says: ..."), ``twine upload
--verbose`` prints it too; pip and twine without ``--verbose`` print only the
status line (PyPI puts its message in the reason phrase, which ASGI servers
cannot set). A policy's refusal of a GET by pip or uv is therefore redirected
to a page whose URL spells the reasons (:mod:`registry.web.denial_links`).
Every 401 carries a Basic challenge, so pip and uv retry with the credentials
of the index URL, keyring or netrc.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from registry.errors import ArbiterError, PolicyDenied, Unauthorized
from registry.web import denial_links
from registry.web.format_routes import rendering_route

CHALLENGE = 'Basic realm="arbiter", charset="UTF-8"'


def render(error: ArbiterError, request: Request | None = None) -> Response:
    if isinstance(error, PolicyDenied) and request is not None and _points_to_reasons(request):
        return _to_reasons(error, request)
    status = error.status
    message = error.message
    headers: dict[str, str] = {}
    if isinstance(error, Unauthorized) or (isinstance(error, PolicyDenied) and error.anonymous):
        status = 401
        headers["WWW-Authenticate"] = CHALLENGE
        if isinstance(error, PolicyDenied):
            message = f"authentication required: {error.message}"
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


def _points_to_reasons(request: Request) -> bool:
    return (
        request.method == "GET"
        and "repo" in request.path_params
        and denial_links.shows_only_status_line(request.headers.get("user-agent", ""))
    )


def _to_reasons(error: PolicyDenied, request: Request) -> Response:
    """303 to the page whose URL carries the reasons; the body says them as well."""
    if error.anonymous:
        return render(error)  # 401 and a challenge: pip and uv retry with credentials
    repository = request.path_params["repo"]
    prefix = f"{request.scope.get('root_path', '')}/pypi/{repository}"
    data = request.app.state.services.settings.data
    target = denial_links.location(data, prefix, repository, error.reasons)
    response = RedirectResponse(target, status_code=303)
    response.body = (error.message + "\n").encode()
    response.headers["content-length"] = str(len(response.body))
    response.headers["content-type"] = "text/plain; charset=utf-8"
    return response


PypiRoute = rendering_route(
    render, lambda message: PlainTextResponse(message + "\n", status_code=400)
)
