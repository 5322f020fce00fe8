"""Image analysis on manifest push, and the SBOM attached to the image as a referrer.

What an OCI push contributes to :mod:`registry.supplychain`:

1. :func:`plan` (in the push's read, before the content decision) says
   whether the manifest is a container image -- an OCI image manifest or a
   Docker schema 2 manifest with an image config and only filesystem layers.
   Indexes are not analysed (each platform manifest was, on its own push);
   Helm charts, ORAS artifacts and SBOM referrers are not images. A
   manifest this image already holds with a stored analysis is not analysed
   again (a re-tag pushes the same bytes). The plan names the layers in
   order and where the blob store keeps each.
2. :func:`analyse` streams the layers through the image analyser on a worker
   thread (the event loop keeps serving) and, when an SBOM came out, stages
   an :class:`SbomReferrer`: an OCI manifest with ``artifactType``
   ``application/vnd.cyclonedx+json`` whose ``subject`` is the image, and
   whose one layer is the SBOM blob.
3. After the content decision allowed the push, the analysis is recorded
   (``analyse`` event) and the referrer is stored in the same transaction,
   so ``GET /v2/<name>/referrers/<digest>`` lists it from then on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from registry.blobs import BlobRef, BlobStore, StagedBlob
from registry.formats.oci import records
from registry.formats.oci.call import Call
from registry.formats.oci.manifest import IMAGE_TYPES, OCI_MANIFEST, Manifest, parse
from registry.governance.blob_rows import commit_blob
from registry.supplychain import storage
from registry.supplychain.hook import LayerBlob, StagedAnalysis, analyse_layers, once
from registry.supplychain.models import PENDING
from registry.supplychain.sbom.cyclonedx import JSON_MEDIA_TYPE

SBOM_ARTIFACT_TYPE = JSON_MEDIA_TYPE  # application/vnd.cyclonedx+json
SBOM_TITLE = "sbom.cdx.json"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
EMPTY_DIGEST = "sha256:" + hashlib.sha256(EMPTY_CONFIG).hexdigest()

IMAGE_CONFIGS = frozenset(
    {
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    }
)
LAYER_TYPES = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    }
)


def is_image(manifest: Manifest) -> bool:
    """A container image: image manifest, image config, filesystem layers, no artifactType."""
    return (
        manifest.media_type in IMAGE_TYPES
        and manifest.artifact_type is None
        and manifest.config is not None
        and manifest.config.media_type in IMAGE_CONFIGS
        and all(layer.media_type in LAYER_TYPES for layer in manifest.layers)
    )


def plan(
    session: Session, repo_id: int, image: str, manifest: Manifest, digest: str
) -> list[LayerBlob] | None:
    """The layers to analyse, in order; ``None`` when the manifest is not to be analysed."""
    if not is_image(manifest):
        return None
    existing = records.manifest_by_digest(session, repo_id, image, digest)
    if existing is not None:
        summary = storage.summary(session, existing.version_id)
        if summary is not None and summary.status != PENDING:
            return None  # analysed when first pushed; its facts are the version's
    layers = []
    for layer in manifest.layers:
        link = records.blob_link(session, repo_id, image, layer.digest)
        layers.append(
            LayerBlob(
                digest=layer.digest,
                media_type=layer.media_type,
                size=layer.size,
                storage_digest=link.storage_digest if link is not None else None,
            )
        )
    return layers


async def analyse(
    call: Call, manifest: Manifest, digest: str, body_size: int, layers: list[LayerBlob]
) -> StagedAnalysis | None:
    """Analyse the image's layers; stage its SBOM and the referrer that will carry it."""
    analysis = await analyse_layers(
        call.services.db,
        call.services.blobs,
        call.resource(version=digest, digest=digest),
        digest=digest,
        size=manifest.content_size(body_size),
        filename=records.MANIFEST_FILE,
        layers=layers,
    )
    if analysis is not None and analysis.sbom is not None:
        subject = {"mediaType": manifest.media_type, "digest": digest, "size": body_size}
        analysis.attachment = await SbomReferrer.stage(call, subject, analysis.sbom)
    return analysis


def referrer_manifest(subject: dict[str, Any], sbom: StagedBlob, created: datetime) -> bytes:
    """The OCI 1.1 artifact manifest that attaches ``sbom`` to ``subject``."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SBOM_ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST, "size": 2},
        "layers": [
            {
                "mediaType": SBOM_ARTIFACT_TYPE,
                "digest": sbom.digest,
                "size": sbom.size,
                "annotations": {"org.opencontainers.image.title": SBOM_TITLE},
            }
        ],
        "subject": subject,
        "annotations": {
            "org.opencontainers.image.created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "dev.arbiter.sbom.source": "generated",
        },
    }
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass
class SbomReferrer:
    """The staged referrer manifest and empty config; stored when the analysis is."""

    blobs: BlobStore
    repository: str
    image: str
    created_by: str
    body: StagedBlob
    config: StagedBlob
    manifest: Manifest

    @classmethod
    async def stage(cls, call: Call, subject: dict[str, Any], sbom: StagedBlob) -> SbomReferrer:
        blobs = call.services.blobs
        body = referrer_manifest(subject, sbom, datetime.now(UTC))
        staged = await blobs.stage(once(body))
        try:
            config = await blobs.stage(once(EMPTY_CONFIG))
        except BaseException:
            blobs.discard(staged)
            raise
        return cls(
            blobs=blobs,
            repository=call.target.repository,
            image=call.target.image,
            created_by=call.subject.id,
            body=staged,
            config=config,
            manifest=parse(body, OCI_MANIFEST),
        )

    @property
    def details(self) -> dict[str, Any]:
        """For the ``analyse`` event (and so lineage): where the SBOM is attached."""
        return {"referrer": self.body.digest, "artifact_type": SBOM_ARTIFACT_TYPE}

    def attach(self, session: Session, sbom: BlobRef) -> None:
        """Store the referrer: its blobs linked into the image, its manifest row."""
        repository = records.oci_repository(session, self.repository)
        repo_id = records.repository_id(repository)
        config = commit_blob(session, self.blobs, self.config, EMPTY_MEDIA_TYPE)
        for digest, ref in ((EMPTY_DIGEST, config), (sbom.digest, sbom)):
            records.link_blob(session, repo_id, self.image, digest, ref, created_by=self.created_by)
        ref = commit_blob(session, self.blobs, self.body, OCI_MANIFEST)
        records.store_manifest(
            session,
            repository,
            self.image,
            self.body.digest,
            ref,
            self.manifest,
            created_by=self.created_by,
        )

    def discard(self) -> None:
        self.blobs.discard(self.body)
        self.blobs.discard(self.config)
