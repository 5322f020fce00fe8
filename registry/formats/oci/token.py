"""The Docker token endpoint: ``GET``/``POST /v2/token`` (the realm of every challenge).

Accepts HTTP Basic (a user name and an Arbiter API token as password), a
Bearer API token, or nothing (an anonymous token, useful where the policy lets
anyone pull a public repository). For each requested scope
``repository:REPOSITORY/IMAGE:pull,push,delete`` the token carries exactly the
actions the policy would allow this subject on that repository right now; it
is signed (see ``jws``), lives :data:`TOKEN_TTL` seconds and narrows what its
bearer may attempt; every request made with it is still decided by the policy.
Each issue is an audit event naming the subject and the scopes granted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from registry.auth import ANONYMOUS, Subject
from registry.errors import ArbiterError, NotFound, Unauthorized
from registry.formats.oci import auth
from registry.formats.oci.errors import OciError, render, to_oci
from registry.formats.oci.names import split_name
from registry.formats.oci.records import FORMAT
from registry.governance import DELETE, PULL, PUSH, Action, RequestContext, Resource
from registry.services import Services

TOKEN_TTL = 300
_VERBS = {auth.PULL: PULL, auth.PUSH: PUSH, auth.DELETE: DELETE}


def requested_scopes(values: list[str]) -> list[tuple[str, str, list[str]]]:
    """``repository:NAME:a,b`` entries (several per parameter, space separated) as triples."""
    scopes = []
    for value in values:
        for item in value.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind and name:
                scopes.append((kind, name, [a for a in actions.split(",") if a]))
    return scopes


def _grant(
    services: Services, subject: Subject, context: RequestContext, name: str, wanted: list[str]
) -> list[str]:
    """The actions among ``wanted`` the policy would allow on ``name`` now."""
    try:
        repository, image = split_name(name)
    except OciError:
        return []
    if "*" in wanted:
        wanted = list(_VERBS)
    granted = []
    for action in dict.fromkeys(wanted):
        verb = _VERBS.get(action)
        if verb is None:
            continue
        probe = Action(
            verb=verb, resource=Resource(repository=repository, format=FORMAT, name=image)
        )
        try:
            if services.governor.permits(subject, probe, context).allow:
                granted.append(action)
        except NotFound:
            return []
    return granted


def _issue(
    services: Services,
    subject: Subject,
    context: RequestContext,
    scopes: list[tuple[str, str, list[str]]],
    client_id: str,
) -> dict[str, Any]:
    access: list[dict[str, Any]] = []
    for kind, name, wanted in scopes:
        if kind == "repository":
            granted = _grant(services, subject, context, name, wanted)
            access.append({"type": "repository", "name": name, "actions": granted})
        elif kind == "registry" and name == "catalog" and not subject.is_anonymous:
            access.append({"type": "registry", "name": "catalog", "actions": ["*"]})
    token = auth.issue(services, subject, access, TOKEN_TTL)
    services.governor.record(
        subject,
        "token.issue",
        {"service": auth.SERVICE},
        lambda _session: None,
        {"access": access, "client": client_id, "ttl": TOKEN_TTL},
    )
    issued = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"token": token, "access_token": token, "expires_in": TOKEN_TTL, "issued_at": issued}


def _subject(services: Services, header: str | None, form: dict[str, str]) -> Subject:
    """Basic/Bearer API token, an OAuth2 password grant form, or anonymous."""
    if form.get("grant_type") == "password":
        import base64

        pair = f"{form.get('username', '')}:{form.get('password', '')}".encode()
        header = "Basic " + base64.b64encode(pair).decode()
    if not header:
        return ANONYMOUS
    return services.authenticator.authenticate(header)


async def token(request: Request, services: Services, context: RequestContext) -> Response:
    form: dict[str, str] = {}
    scope_values = request.query_params.getlist("scope")
    if request.method == "POST":
        data = await request.form()
        form = {k: v for k, v in data.items() if isinstance(v, str)}
        scope_values += [form["scope"]] if form.get("scope") else []
    client_id = request.query_params.get("client_id") or form.get("client_id", "")
    try:
        subject = await run_in_threadpool(
            _subject, services, request.headers.get("authorization"), form
        )
        body = await run_in_threadpool(
            _issue, services, subject, context, requested_scopes(scope_values), client_id
        )
    except Unauthorized as error:
        return render(
            OciError("UNAUTHORIZED", error.message),
            {"WWW-Authenticate": 'Basic realm="arbiter", charset="UTF-8"'},
        )
    except ArbiterError as error:
        return render(to_oci(error))
    return JSONResponse(body)
