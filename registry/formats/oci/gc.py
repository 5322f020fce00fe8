"""Clean what OCI clients leave behind: staged blobs never referenced, abandoned uploads.

A blob pushed into an image stays *staged* until an allowed manifest
references it. Clients push layers moments before their manifest, so a staged
link older than :data:`STAGED_GRACE` (24 hours) belongs to a push that was
abandoned or denied: the link is removed. The bytes are the registry's
garbage collector's to reclaim (``registry.gc``), once nothing references them
any more: it alone knows every format's references and races pushes safely. Upload
sessions whose bytes the blob store no longer holds (it sweeps idle uploads,
see ``registry.services.STAGING_GRACE``), or older than :data:`UPLOAD_MAX_AGE`
whatever their progress, are forgotten.

The sweep runs at most once per :data:`SWEEP_INTERVAL` per process, after an
upload session is opened, so a registry that receives pushes cleans up after
them without a scheduler.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlmodel import col, select

from registry.blobs import BlobNotFound, BlobStore
from registry.db import Database
from registry.db.oci_models import STAGED, OciBlobLink, OciUpload
from registry.services import Services

STAGED_GRACE = timedelta(hours=24)
UPLOAD_MAX_AGE = timedelta(days=7)
SWEEP_INTERVAL = 3600.0

log = structlog.get_logger("arbiter.oci.gc")
_last_sweep = 0.0
_sweep_lock = threading.Lock()


@dataclass(frozen=True)
class SweepReport:
    links: int
    uploads: int


def maybe_sweep(services: Services) -> None:
    """Sweep if this process has not swept for :data:`SWEEP_INTERVAL` seconds."""
    global _last_sweep
    with _sweep_lock:
        if time.monotonic() - _last_sweep < SWEEP_INTERVAL and _last_sweep:
            return
        _last_sweep = time.monotonic()
    report = sweep(services.db, services.blobs)
    if report.links or report.uploads:
        log.info("oci sweep", links=report.links, uploads=report.uploads)


def sweep(
    db: Database,
    blobs: BlobStore,
    *,
    staged_grace: timedelta = STAGED_GRACE,
    upload_max_age: timedelta = UPLOAD_MAX_AGE,
    now: datetime | None = None,
) -> SweepReport:
    """Remove stale staged links and abandoned upload sessions."""
    moment = now or datetime.now(UTC)
    with db.writer() as session:
        stale = session.exec(
            select(OciBlobLink).where(
                OciBlobLink.state == STAGED, col(OciBlobLink.created_at) < moment - staged_grace
            )
        ).all()
        for link in stale:
            session.delete(link)
        old = [
            upload
            for upload in session.exec(select(OciUpload)).all()
            if _abandoned(blobs, upload, moment - upload_max_age)
        ]
        for upload in old:
            blobs.uploads.cancel(upload.upload_id)
            session.delete(upload)
    return SweepReport(links=len(stale), uploads=len(old))


def _abandoned(blobs: BlobStore, upload: OciUpload, cutoff: datetime) -> bool:
    created = upload.created_at
    if created.tzinfo is None:  # SQLite hands back naive UTC
        created = created.replace(tzinfo=UTC)
    if created < cutoff:
        return True
    try:
        blobs.uploads.size(upload.upload_id)
    except BlobNotFound:
        return True
    return False
