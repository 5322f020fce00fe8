"""The push hook: analyse staged bytes before the content-stage decision.

:func:`analyse_staged` runs between staging and the second decision of
:func:`registry.governance.uploads.governed_push`; any push road can call it
with the staged blob. Its :class:`StagedAnalysis` gives the decision its
facts (``sbom``, ``vulnerabilities``, ``scan``), and once the push has
committed :meth:`StagedAnalysis.record` commits the SBOM blob, the document
and findings rows and the version's summary with an ``analyse`` audit event.
On deny or error :meth:`StagedAnalysis.discard` forgets the staged SBOM.

:func:`analyse_layers` does the same for an OCI image manifest, whose
content is its layers (read from the blob store, in order); the adapter may
hang an :class:`Attachment` on the analysis (the SBOM as an OCI referrer)
that commits with the SBOM, in the ``analyse`` event's transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import structlog
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from registry.auth.subject import Subject
from registry.blobs import BlobNotFound, BlobRef, BlobStore, StagedBlob
from registry.db import Database
from registry.governance.blob_rows import commit_blob
from registry.supplychain import scan, storage
from registry.supplychain.errors import ScanFailed
from registry.supplychain.limits import scan_limits
from registry.supplychain.models import GENERATED, SbomDocument
from registry.supplychain.sbom.analyse import Layer, analyse_image
from registry.supplychain.sbom.cyclonedx import JSON_MEDIA_TYPE, SPEC_VERSION
from registry.supplychain.sbom.inventory import Inventory

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


class Attachment(Protocol):
    """More to commit with a stored SBOM (an OCI referrer); ``details`` go into the event."""

    @property
    def details(self) -> Mapping[str, Any]: ...
    def attach(self, session: Session, sbom: BlobRef) -> None: ...
    def discard(self) -> None: ...


@dataclass
class StagedAnalysis:
    """An analysis whose SBOM waits in staging for the content-stage decision."""

    result: scan.Result
    sbom: StagedBlob | None
    blobs: BlobStore
    attachment: Attachment | None = None

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
        details = {"file": self.result.target.filename, **self.result.details(digest)}
        if self.attachment is not None:
            details["sbom"] = {**details["sbom"], **self.attachment.details}
        try:
            recorder.record(
                subject,
                ANALYSE,
                resource.to_json(),
                lambda session: self.store(session, subject),
                details,
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
            ref = commit_blob(session, self.blobs, self.sbom, JSON_MEDIA_TYPE)
            digest = ref.digest
            if self.attachment is not None:
                self.attachment.attach(session, ref)
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
        """Forget the staged SBOM and attachment (a no-op once committed)."""
        if self.sbom is not None:
            self.blobs.discard(self.sbom)
        if self.attachment is not None:
            self.attachment.discard()


async def analyse_staged(
    db: Database, blobs: BlobStore, resource: Resource, staged: StagedBlob
) -> StagedAnalysis | None:
    """Analyse ``staged`` for ``resource``; ``None`` when the resource names no version."""
    target = _target(resource, resource.file or resource.name, staged.digest, staged.size)
    if target is None:
        return None

    def analyse() -> scan.Result:
        with blobs.open_staged(staged) as file:
            return scan.run(file, target, limits=scan_limits(), db=db)

    return await _staged(blobs, await run_in_threadpool(analyse))


@dataclass(frozen=True)
class LayerBlob:
    """An image layer as its manifest names it, and where the blob store keeps it."""

    digest: str
    media_type: str
    size: int
    storage_digest: str | None  # None: not in the registry (a non-distributable layer)


async def analyse_layers(
    db: Database,
    blobs: BlobStore,
    resource: Resource,
    *,
    digest: str,
    size: int,
    filename: str,
    layers: Sequence[LayerBlob],
) -> StagedAnalysis | None:
    """Analyse an image manifest ``digest`` for ``resource``: its layers applied in order.

    Each layer is streamed from the blob store once (never extracted, never
    held in memory); :class:`~registry.supplychain.limits.ScanLimits` bound
    the whole image. ``None`` when the resource names no version.
    """
    target = _target(resource, filename, digest, size, container=True)
    if target is None:
        return None
    limits = scan_limits()

    def inventory() -> Inventory:
        with contextlib.ExitStack() as opened:
            found = [
                Layer(opened.enter_context(_open_layer(blobs, layer)), layer.media_type,
                      layer.digest, layer.size)
                for layer in layers
            ]  # fmt: skip
            return analyse_image(found, name=f"{resource.name}@{digest}", limits=limits)

    def analyse() -> scan.Result:
        return scan.run_with(inventory, target, db=db)

    return await _staged(blobs, await run_in_threadpool(analyse))


def _target(
    resource: Resource, filename: str | None, digest: str, size: int, *, container: bool = False
) -> scan.Target | None:
    """What is analysed, for ``resource``; ``None`` when it names no version."""
    if resource.name is None or resource.version is None:
        return None
    return scan.Target(
        repository=resource.repository,
        format=resource.format,
        name=resource.name,
        version=resource.version,
        filename=filename or resource.name,
        digest=digest,
        size=size,
        container=container,
    )


def _open_layer(blobs: BlobStore, layer: LayerBlob) -> BinaryIO:
    if layer.storage_digest is None:
        raise ScanFailed(
            f"layer {layer.digest} is not in the registry (a non-distributable layer): "
            "the image cannot be analysed without it"
        )
    try:
        return blobs.path_of(layer.storage_digest).open("rb")
    except (BlobNotFound, OSError) as error:
        raise ScanFailed(
            f"layer {layer.digest} cannot be read from the blob store: {error}"
        ) from error


async def _staged(blobs: BlobStore, result: scan.Result) -> StagedAnalysis:
    sbom = await blobs.stage(once(result.document)) if result.document is not None else None
    return StagedAnalysis(result, sbom, blobs)


async def once(data: bytes) -> AsyncIterator[bytes]:
    """``data`` as a one-chunk body, for :meth:`BlobStore.stage`."""
    yield data
