"""Tag listing: ``GET /v2/<name>/tags/list`` with ``n``/``last`` pagination and ``Link``.

Listing is a pull decision (recorded as a listing, which lineage does not
count as a download).
"""

from __future__ import annotations

from urllib.parse import urlencode

from sqlmodel import Session
from starlette.responses import JSONResponse, Response

from registry.formats.oci import records
from registry.formats.oci.call import Call
from registry.formats.oci.errors import OciError
from registry.governance import PULL, Action


def page_size(value: str | None) -> int | None:
    """``n`` as a non-negative integer; absent means everything."""
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise OciError("UNSUPPORTED", f"n={value!r} must be a non-negative integer", status=400)
    return int(value)


def paginate(names: list[str], n: int | None, last: str | None) -> tuple[list[str], bool]:
    """The page after ``last`` (in byte order) of at most ``n`` names, and whether more follow."""
    if last:
        names = [name for name in names if name.encode() > last.encode()]
    if n is None:
        return names, False
    return names[:n], len(names) > n


def next_link(path: str, n: int, last: str) -> str:
    return f'<{path}?{urlencode({"n": n, "last": last})}>; rel="next"'


async def list_tags(call: Call) -> Response:
    target = call.target
    params = call.request.query_params
    n, last = page_size(params.get("n")), params.get("last")

    def apply(session: Session) -> list[str]:
        repo_id = records.repository_id(records.oci_repository(session, target.repository))
        if records.package(session, repo_id, target.image) is None:
            raise OciError("NAME_UNKNOWN", f"{target.name} holds no manifests")
        return records.tags(session, repo_id, target.image)

    action = Action(verb=PULL, resource=call.resource(), details={"listing": "tags"})
    names = await call.govern(action, apply) or []
    page, more = paginate(names, n, last)
    headers = {}
    if more and n is not None and page:
        headers["Link"] = next_link(call.location("tags", "list"), n, page[-1])
    return JSONResponse({"name": target.name, "tags": page}, headers=headers)
