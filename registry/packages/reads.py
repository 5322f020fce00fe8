"""The read path of package formats: authenticate, read, decide and audit in one step.

Installers fetch an index page, a metadata file and an archive per package,
each of which is decided by the policy and recorded in the audit log. Measured
on the 2-core loopback machine (``wrk -c16`` on a PyPI project page), the
framework around that work cost more than the work itself: a FastAPI sync
dependency for authentication and ``run_in_threadpool`` for the rest meant two
worker-thread hops per request, each through anyio's capacity limiter and
cancel scope. :func:`governed_read` does all of it in one step, on the event
loop or one hop off it (:mod:`registry.web.hops`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection
from starlette.requests import Request

from registry.auth import Subject
from registry.governance import Action, RequestContext, Serving
from registry.governance.governor import PendingRead
from registry.services import Services
from registry.web.hops import governed

T = TypeVar("T")


def context_of(request: Request) -> RequestContext:
    """What :func:`registry.web.deps.get_context` builds, without a dependency."""
    return RequestContext(
        request_id=getattr(request.state, "request_id", ""),
        client=request.headers.get("user-agent", ""),
        remote=request.client.host if request.client else "",
    )


async def governed_read(
    request: Request,
    services: Services,
    read: Callable[[Connection], T],
    action: Callable[[T], Action],
    serving: Callable[[T], Serving] = lambda _rows: Serving(),
) -> tuple[Subject, T]:
    """Authenticate, read rows, then decide and audit ``action(rows)``; the rows once durable.

    ``serving(rows)`` says whether the rows can be served (else its error is
    audited as failed and raised) and which version's download counter the
    read bumps (:meth:`Governor.start_read`).
    """
    header = request.headers.get("authorization")
    context = context_of(request)

    def start() -> PendingRead[tuple[Subject, T]]:
        subject = services.authenticator.authenticate(header)
        request.state.subject = subject
        pending = services.governor.start_read(subject, context, read, action, serving)
        return PendingRead((subject, pending.rows), pending.recorded, pending.error)

    return await governed(services, start)
