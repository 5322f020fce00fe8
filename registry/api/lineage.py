"""Lineage of an artifact version, derived from its audit events."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from audit import build_lineage
from registry.errors import BadRequest, NotFound
from registry.web.deps import ServicesDep, UserDep

router = APIRouter(prefix="/lineage", tags=["lineage"])


@router.get("/{repository}/{path:path}")
def lineage(
    repository: str,
    path: str,
    services: ServicesDep,
    _user: UserDep,
    format: Literal["json", "mermaid", "dot"] = "json",
) -> Response:
    """``/lineage/REPO/NAME/VERSION``; NAME may hold slashes (OCI images)."""
    name, _, version = path.rstrip("/").rpartition("/")
    if not name or not version:
        raise BadRequest("use /api/v1/lineage/REPOSITORY/NAME/VERSION")
    with services.db.reader() as session:
        found = build_lineage(session.connection(), repository, name, version)
    if not found.steps:
        raise NotFound(f"no events recorded for {repository}/{name}/{version}")
    if format == "mermaid":
        return PlainTextResponse(found.to_mermaid(), media_type="text/vnd.mermaid")
    if format == "dot":
        return PlainTextResponse(found.to_dot(), media_type="text/vnd.graphviz")
    return JSONResponse(found.to_json())
