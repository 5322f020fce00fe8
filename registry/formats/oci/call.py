"""One ``/v2`` request as the handlers see it: target, subject, services, governance.

Handlers translate the request into governed actions through :meth:`Call.govern`
(the one road; :meth:`Call.start_read` for pulls, which read their rows
first) and read rows through :meth:`Call.read`; none blocks the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from registry.auth import Subject
from registry.formats.oci.auth import Credentials
from registry.formats.oci.names import Target
from registry.formats.oci.records import FORMAT
from registry.governance import Action, RequestContext, Resource, Serving
from registry.governance.governor import Apply, PendingRead
from registry.services import Services

T = TypeVar("T")

DOCKER_API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")


@dataclass(frozen=True)
class Call:
    request: Request
    services: Services
    credentials: Credentials
    context: RequestContext
    target: Target

    @property
    def subject(self) -> Subject:
        return self.credentials.subject

    def resource(self, **parts: Any) -> Resource:
        """A resource in the target's repository and image."""
        return Resource(
            repository=self.target.repository, format=FORMAT, name=self.target.image, **parts
        )

    async def govern(self, action: Action, apply: Apply[T] | None = None) -> T | None:
        """Decide, audit and apply ``action`` (raises PolicyDenied on a deny)."""
        governor = self.services.governor
        return await run_in_threadpool(governor.govern, self.subject, action, self.context, apply)

    def start_read(
        self,
        read: Callable[[Connection], T],
        action: Callable[[T], Action],
        serving: Callable[[T], Serving],
    ) -> PendingRead[T]:
        """Read rows, then decide and queue the audit event of their pull
        (:meth:`Governor.start_read`); await it with :func:`registry.web.hops.governed`."""
        governor = self.services.governor
        return governor.start_read(self.subject, self.context, read, action, serving)

    async def read(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a read-only session off the event loop; returned rows are detached."""

        def run() -> T:
            with self.services.db.reader() as session:
                result = work(session)
                session.expunge_all()  # rows stay readable after the session's rollback
                return result

        return await run_in_threadpool(run)

    def location(self, *parts: str) -> str:
        return "/".join(("/v2", self.target.name, *parts))
