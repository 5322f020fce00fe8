"""The two decisions of a package push, around an analysis step the formats own.

:func:`registry.governance.uploads.governed_push` decides, stages and decides
again in one call, with nothing in between but the digest and size. A package
push must read the staged file (wheel METADATA, sdist PKG-INFO, the npm
tarball's package.json) before the second decision, so that the policy sees
the licenses and dependencies of the content itself; the two halves are
therefore offered separately here, on the same road:

1. :func:`decide_request` -- before any byte of content is accepted;
2. the format streams the content into staging and inspects it;
3. :func:`commit_staged` -- the supply-chain analysis of the staged package
   (:func:`registry.supplychain.hook.analyse_staged`, as ``governed_push``
   runs it: SBOM, findings, ``scan``), the content-stage decision on the
   format's facts and the analysis's together, and on allow the commit of the
   staged blobs, their rows and the audit event in one transaction, then the
   analysis's own ``analyse`` event. Staged bytes are discarded whatever the
   outcome.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from registry.auth.subject import Subject
from registry.blobs import BlobRef, BlobStore, StagedBlob
from registry.governance import STAGE_CONTENT, STAGE_REQUEST, Action, Governor, RequestContext
from registry.governance.blob_rows import commit_blob
from registry.supplychain.hook import StagedAnalysis, analyse_staged

T = TypeVar("T")


@dataclass(frozen=True)
class Staged:
    """A staged blob and the media type its row records."""

    blob: StagedBlob
    media_type: str = "application/octet-stream"


async def decide_request(
    governor: Governor, subject: Subject, action: Action, context: RequestContext
) -> None:
    """The request-stage decision; raises PolicyDenied (audited) on a deny."""
    if action.stage != STAGE_REQUEST:
        raise ValueError("decide_request takes an action at stage 'request'")
    await run_in_threadpool(governor.govern, subject, action, context)


async def commit_staged(
    governor: Governor,
    blobs: BlobStore,
    subject: Subject,
    action: Action,
    context: RequestContext,
    staged: Sequence[Staged],
    record: Callable[[Session, list[BlobRef]], T],
) -> T:
    """Analyse ``staged[0]``, decide the content; on allow commit ``staged`` and ``record``."""
    if action.stage != STAGE_CONTENT:
        raise ValueError("commit_staged takes an action at stage 'content'")

    def apply(session: Session) -> T:
        refs = []
        for item in staged:
            refs.append(commit_blob(session, blobs, item.blob, item.media_type))
        return record(session, refs)

    analysis: StagedAnalysis | None = None
    try:
        analysis = await analyse_staged(governor.db, blobs, action.resource, staged[0].blob)
        if analysis is not None:
            action = dataclasses.replace(
                action, artifact=merge_facts(action.artifact, analysis.facts)
            )
        result = await run_in_threadpool(governor.govern, subject, action, context, apply)
        if analysis is not None:  # SBOM and findings, with an ``analyse`` event
            await run_in_threadpool(analysis.record, governor, subject, action.resource)
    finally:
        discard(blobs, staged)
        if analysis is not None:
            analysis.discard()
    if result is None:  # pragma: no cover - govern returns what apply returned
        raise RuntimeError("the governed push returned nothing")
    return result


def merge_facts(declared: Mapping[str, Any], analysed: Mapping[str, Any]) -> dict[str, Any]:
    """The format's facts with the analysis's; licenses and purls are the union of both.

    The package's metadata declares its license and dependencies; the SBOM
    catalogues what the archive holds. A policy refusing a license must see
    it wherever it was found.
    """
    merged = {**declared, **analysed}
    mine, theirs = declared.get("sbom") or {}, analysed.get("sbom") or {}
    merged["sbom"] = {
        key: sorted({*mine.get(key, ()), *theirs.get(key, ())}) for key in ("licenses", "purls")
    }
    return merged


def discard(blobs: BlobStore, staged: Sequence[Staged]) -> None:
    """Forget staged blobs (a no-op for those already committed)."""
    for item in staged:
        blobs.discard(item.blob)
