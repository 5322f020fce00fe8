"""The governed push: decide, stage, analyse, decide again, then commit.

DESIGN.md decides a push twice: before any byte is accepted (may this subject
write here at all?) and after the content is known (may this content enter?).
Bytes wait in the blob store's staging area in between; a deny, an error or a
disconnect discards them, so nothing half-written is ever visible.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterable, Callable
from typing import TypeVar

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from registry.auth.subject import Subject
from registry.blobs import BlobRef, BlobStore
from registry.governance.actions import STAGE_CONTENT, Action, RequestContext
from registry.governance.blob_rows import commit_blob
from registry.governance.governor import Governor
from registry.supplychain.hook import StagedAnalysis, analyse_staged

T = TypeVar("T")
Record = Callable[[Session, BlobRef], T]


async def governed_push(
    governor: Governor,
    blobs: BlobStore,
    subject: Subject,
    action: Action,
    context: RequestContext,
    body: AsyncIterable[bytes],
    record: Record[T],
    *,
    expected_sha256: str | None = None,
    max_size: int | None = None,
    media_type: str = "",
) -> T:
    """Run the whole push; ``record`` writes the format's rows for the committed blob."""
    await run_in_threadpool(governor.govern, subject, action, context)
    staged = await blobs.stage(body, expected_sha256=expected_sha256, max_size=max_size)
    analysis: StagedAnalysis | None = None
    try:
        # SBOM, findings and scan.status for the content-stage decision.
        analysis = await analyse_staged(governor.db, blobs, action.resource, staged)
        content = dataclasses.replace(
            action,
            stage=STAGE_CONTENT,
            resource=dataclasses.replace(action.resource, digest=staged.digest),
            artifact={
                **action.artifact,
                "size": staged.size,
                **(analysis.facts if analysis is not None else {}),
            },
        )

        def apply(session: Session) -> T:
            return record(session, commit_blob(session, blobs, staged, media_type))

        result = await run_in_threadpool(governor.govern, subject, content, context, apply)
        if analysis is not None:  # SBOM and findings, with an ``analyse`` event
            await run_in_threadpool(analysis.record, governor, subject, content.resource)
    finally:
        blobs.discard(staged)  # a no-op once committed
        if analysis is not None:
            analysis.discard()
    assert result is not None
    return result
