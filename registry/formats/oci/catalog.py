"""The catalog: ``GET /v2/_catalog`` lists the OCI names the subject may pull.

Each OCI repository is asked of the policy (without acting, so without an
event per repository); names are ``REPOSITORY/IMAGE`` in byte order, paginated
like tag lists.
"""

from __future__ import annotations

from sqlmodel import select
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from registry.auth import Subject
from registry.db.models import Repository
from registry.formats.oci import records, tags
from registry.governance import PULL, Action, RequestContext, Resource
from registry.services import Services


def _names(services: Services, subject: Subject, context: RequestContext) -> list[str]:
    with services.db.reader() as session:
        repositories = session.exec(
            select(Repository).where(Repository.format == records.FORMAT)
        ).all()
        listing = {
            repo.name: records.images(session, records.repository_id(repo)) for repo in repositories
        }
    names: list[str] = []
    for repository, images in listing.items():
        probe = Action(verb=PULL, resource=Resource(repository=repository, format=records.FORMAT))
        if images and services.governor.permits(subject, probe, context).allow:
            names += [f"{repository}/{image}" for image in images]
    return sorted(names, key=lambda name: name.encode())


async def catalog(
    services: Services, subject: Subject, context: RequestContext, n: str | None, last: str | None
) -> Response:
    names = await run_in_threadpool(_names, services, subject, context)
    size = tags.page_size(n)
    page, more = tags.paginate(names, size, last)
    headers = {}
    if more and size is not None and page:
        headers["Link"] = tags.next_link("/v2/_catalog", size, page[-1])
    return JSONResponse({"repositories": page}, headers=headers)
