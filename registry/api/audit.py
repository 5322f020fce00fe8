"""The evidence over HTTP: public key, checkpoints, proofs, events, export.

Auditors verify what they fetch here offline (``arbiter audit verify-export``)
with the public key; nothing served here asks to be trusted.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from audit import (
    AuditError,
    EventFilter,
    create_checkpoint,
    export_events,
    list_checkpoints,
    prove_consistency,
    prove_inclusion,
    query_events,
    render_csv,
    render_json,
)
from registry.errors import BadRequest, NotFound
from registry.services import Services
from registry.web.deps import AdminDep, ServicesDep

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("/public-key", response_class=PlainTextResponse)
def public_key(services: ServicesDep) -> str:
    """The verifier key (C2SP note format) that signs every checkpoint."""
    return services.signer.public_key_text() + "\n"


@router.get("/checkpoints")
def checkpoints(services: ServicesDep, _admin: AdminDep) -> list[dict[str, object]]:
    with services.db.reader() as session:
        return [c.to_json() for c in list_checkpoints(session.connection())]


@router.get("/checkpoints/latest", response_class=PlainTextResponse)
def latest(services: ServicesDep) -> str:
    """The newest signed checkpoint as a signed note (what witnesses fetch)."""
    with services.db.reader() as session:
        found = list_checkpoints(session.connection())
    if not found:
        raise NotFound("no checkpoint yet; create one with POST /api/v1/audit/checkpoints")
    return found[-1].note


@router.post("/checkpoints", status_code=201)
def checkpoint_now(services: ServicesDep, _admin: AdminDep) -> dict[str, object]:
    with services.db.writer() as session:
        return create_checkpoint(session.connection(), services.signer).to_json()


def _audit_call(services: Services, work: Any) -> Any:
    """Run a read of the log; audit errors become 404/400 with their message."""
    with services.db.reader() as session:
        try:
            return work(session.connection())
        except AuditError as error:
            raise NotFound(str(error)) from error


@router.get("/proofs/inclusion")
def inclusion(
    services: ServicesDep,
    _admin: AdminDep,
    seq: Annotated[int, Query(ge=1)],
    tree_size: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    proof = _audit_call(services, lambda conn: prove_inclusion(conn, seq, tree_size))
    return dict(proof.to_json())


@router.get("/proofs/consistency")
def consistency(
    services: ServicesDep,
    _admin: AdminDep,
    old_size: Annotated[int, Query(ge=0)],
    new_size: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    proof = _audit_call(services, lambda conn: prove_consistency(conn, old_size, new_size))
    return dict(proof.to_json())


@router.get("/events")
def events(
    services: ServicesDep,
    _admin: AdminDep,
    actor: str | None = None,
    action: str | None = None,
    repository: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    format: Literal["json", "csv"] = "json",
) -> StreamingResponse:
    """A filtered view for people, streamed as JSON or CSV."""
    flt = EventFilter(
        actor=actor,
        action=action,
        repository=repository,
        outcome=outcome,
        since=since,
        until=until,
        after_seq=after_seq,
        limit=limit,
    )
    render = render_csv if format == "csv" else render_json
    media = "text/csv" if format == "csv" else "application/json"
    return StreamingResponse(_rendered(services, flt, render), media_type=media)


def _rendered(services: Services, flt: EventFilter, render: Any) -> Iterator[str]:
    buffer = _Chunks()
    with services.db.reader() as session:
        try:
            render(query_events(session.connection(), flt), buffer)
        except AuditError as error:
            raise BadRequest(str(error)) from error
    yield from buffer.parts


class _Chunks:
    """A write-only text sink; the rendered page is bounded by ``limit``."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)


@router.get("/export")
async def export(
    services: ServicesDep,
    _admin: AdminDep,
    since: str | None = None,
    until: str | None = None,
) -> FileResponse:
    """JSON Lines with covering checkpoint and proofs, for ``arbiter audit verify-export``."""
    handle, path = tempfile.mkstemp(prefix="arbiter-export-", suffix=".jsonl")
    os.close(handle)

    def write() -> None:
        with services.db.reader() as session:
            try:
                export_events(session.connection(), path, since=since, until=until)
            except AuditError as error:
                raise BadRequest(f"{error}") from error

    try:
        await run_in_threadpool(write)
    except BaseException:
        os.unlink(path)
        raise
    return FileResponse(
        path,
        media_type="application/x-ndjson",
        filename="arbiter-audit.jsonl",
        background=BackgroundTask(os.unlink, path),
    )
