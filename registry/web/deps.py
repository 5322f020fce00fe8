"""FastAPI dependencies: the services, the subject and the request context."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from registry.auth import Subject
from registry.errors import Forbidden, Unauthorized
from registry.governance import RequestContext
from registry.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_subject(request: Request) -> Subject:
    """Authenticate once per request (sync: FastAPI runs it in the thread pool)."""
    cached: Subject | None = getattr(request.state, "subject", None)
    if cached is not None:
        return cached
    subject = get_services(request).authenticator.authenticate(request.headers.get("authorization"))
    request.state.subject = subject
    return subject


def get_context(request: Request) -> RequestContext:
    return RequestContext(
        request_id=getattr(request.state, "request_id", ""),
        client=request.headers.get("user-agent", ""),
        remote=request.client.host if request.client else "",
    )


def require_admin(subject: Annotated[Subject, Depends(get_subject)]) -> Subject:
    """Management changes need the global admin role."""
    if subject.is_anonymous:
        raise Unauthorized("authentication required: send a Bearer token")
    if not subject.has_role("admin"):
        raise Forbidden(f"{subject.id} is not an administrator")
    return subject


def require_user(subject: Annotated[Subject, Depends(get_subject)]) -> Subject:
    if subject.is_anonymous:
        raise Unauthorized("authentication required: send a Bearer token")
    return subject


ServicesDep = Annotated[Services, Depends(get_services)]
SubjectDep = Annotated[Subject, Depends(get_subject)]
ContextDep = Annotated[RequestContext, Depends(get_context)]
AdminDep = Annotated[Subject, Depends(require_admin)]
UserDep = Annotated[Subject, Depends(require_user)]
