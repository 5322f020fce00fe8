"""The push hook: analyse staged bytes before the content-stage decision.

:func:`analyse_staged` runs between staging and the second decision of
:func:`registry.governance.uploads.governed_push`; any push road can call it
with the staged blob. Its :class:`StagedAnalysis` gives the decision its
facts (``sbom``, ``vulnerabilities``, ``scan``), and once the push has
committed :meth:`StagedAnalysis.record` commits the SBOM blob, the document
and findings rows and the version's summary with an ``analyse`` audit event.
On deny or error :meth:`StagedAnalysis.discard` forgets the staged SBOM.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from registry.auth.subject import Subject
from registry.blobs import BlobStore, StagedBlob
from registry.db import Database
from registry.governance.blob_rows import commit_blob
from registry.supplychain import scan, storage
from registry.supplychain.limits import scan_limits
from registry.supplychain.models import GENERATED, SbomDocument
from registry.supplychain.sbom.cyclonedx import JSON_MEDIA_TYPE, SPEC_VERSION

ANALYSE = "analyse"
log = structlog.get_logger("arbiter.supplychain")


class Recorder(Protocol):
    """:meth:`registry.governance.Governor.record`: a change and its event, one transaction."""

    def record(
        self,
        subject: Subject,
        verb: str,
        resource: Mapping[str, Any],
        apply: Callable[[Session], Any],
        details: Mapping[str, Any] | None = None,
    ) -> Any: ...


class Resource(Protocol):
    """The push's resource (:class:`registry.governance.Resource`)."""

    @property
    def repository(self) -> str: ...
    @property
    def format(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def version(self) -> str | None: ...
    @property
    def file(self) -> str | None: ...
    def to_json(self) -> dict[str, Any]: ...


@dataclass
class StagedAnalysis:
    """An analysis whose SBOM waits in staging for the content-stage decision."""

    result: scan.Result
    sbom: StagedBlob | None
    blobs: BlobStore

    @property
    def facts(self) -> dict[str, Any]:
        return self.result.facts()

    def record(self, recorder: Recorder, subject: Subject, resource: Resource) -> None:
        """After the push committed: SBOM blob, rows and summary with an ``analyse`` event.

        A transaction of its own, after the push's, so lineage reads *pushed*
        then *analysed*; until it commits (a moment) the version's
        ``scan.status`` is ``pending``.
        """
        digest = self.sbom.digest if self.sbom is not None else None
        try:
            recorder.record(
                subject,
                ANALYSE,
                resource.to_json(),
                lambda session: self.store(session, subject),
                {"file": self.result.target.filename, **self.result.details(digest)},
            )
        except Exception:  # the push is committed: answer it, the version stays "pending"
            log.exception("storing the analysis failed", file=self.result.target.filename)

    def store(self, session: Session, subject: Subject) -> None:
        """The SBOM blob, document and findings rows and the version's summary."""
        target = self.result.target
        version = storage.version_id(session, target.repository, target.name, target.version)
        if version is None:
            return  # the format recorded no version (nothing to attach an SBOM to)
        digest = None
        if self.sbom is not None:
            digest = commit_blob(session, self.blobs, self.sbom, JSON_MEDIA_TYPE).digest
        storage.save_document(
            session,
            SbomDocument(
                version_id=version,
                file=target.filename,
                source=GENERATED,
                artifact_digest=target.digest,
                blob_digest=digest,
                media_type=JSON_MEDIA_TYPE if digest else "",
                spec_version=SPEC_VERSION if digest else "",
                status=self.result.status,
                reason=self.result.reason,
                components=self.result.summary.components,
                summary=self.result.summary.to_json(),
                created_by=subject.id,
            ),
        )
        storage.add_findings(session, version, self.result.matches)
        storage.refresh_summary(session, version, self.result.revision)

    def discard(self) -> None:
        """Forget the staged SBOM (a no-op once committed)."""
        if self.sbom is not None:
            self.blobs.discard(self.sbom)


async def analyse_staged(
    db: Database, blobs: BlobStore, resource: Resource, staged: StagedBlob
) -> StagedAnalysis | None:
    """Analyse ``staged`` for ``resource``; ``None`` when the resource names no version."""
    if resource.name is None or resource.version is None:
        return None
    target = scan.Target(
        repository=resource.repository,
        format=resource.format,
        name=resource.name,
        version=resource.version,
        filename=resource.file or resource.name,
        digest=staged.digest,
        size=staged.size,
    )

    def analyse() -> scan.Result:
        with blobs.open_staged(staged) as file:
            return scan.run(file, target, limits=scan_limits(), db=db)

    result = await run_in_threadpool(analyse)
    sbom = await blobs.stage(_once(result.document)) if result.document is not None else None
    return StagedAnalysis(result, sbom, blobs)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
