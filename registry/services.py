"""The handles one instance runs on, built once from settings and injected.

Backends are chosen here and nowhere else; routes only ask for the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from audit import AuditLog, NoteSigner, checkpoint_job, load_or_create_signing_key
from policies import PolicyPoint
from registry.auth import Authenticator
from registry.blobs import BlobStore, FilesystemBlobStore
from registry.config import Settings
from registry.db import Database, upgrade
from registry.downloads import DownloadLinks
from registry.governance import Governor
from registry.governance.governor import Clock, utc_now
from registry.governance.policy_changes import watch_and_record

# Staged uploads older than this were abandoned (a crash, a client gone);
# younger ones may belong to an upload another instance is still receiving.
STAGING_GRACE = timedelta(hours=6)


@dataclass
class Services:
    settings: Settings
    db: Database
    blobs: BlobStore
    policy: PolicyPoint
    audit: AuditLog
    governor: Governor
    authenticator: Authenticator
    signer: NoteSigner
    downloads: DownloadLinks | None = None
    scheduler: BackgroundScheduler | None = None
    retention: Any = None  # registry.retention.scheduler.RetentionScheduler once started
    rescans: Any = None  # registry.supplychain.rescan.RescanScheduler once started

    def start(self) -> None:
        """Background work of a serving instance: policy watch, staging sweep, checkpoints."""
        if self.settings.policy_watch:
            watch_and_record(self.governor, self.policy)
        self.blobs.sweep_staging(older_than=STAGING_GRACE)
        if self.settings.checkpoint_interval_s > 0:
            self.scheduler = BackgroundScheduler(timezone="UTC")
            self.scheduler.add_job(
                checkpoint_job(self.db.write_engine, self.signer),
                "interval",
                seconds=self.settings.checkpoint_interval_s,
                id="audit-checkpoint",
                coalesce=True,
                max_instances=1,
            )
            self.scheduler.start()
        from registry.retention.scheduler import RetentionScheduler  # imports this module

        self.retention = RetentionScheduler(self)
        self.retention.start()
        from registry.supplychain import rescan  # imports the governance layer

        self.rescans = rescan.start(self)

    def close(self) -> None:
        if self.rescans is not None:
            self.rescans.shutdown()
            self.rescans = None
        if self.retention is not None:
            self.retention.shutdown()
            self.retention = None
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
        self.governor.close()
        self.policy.close()
        self.db.dispose()


def build_services(settings: Settings, clock: Clock = utc_now) -> Services:
    """Open the database (migrating it), the blob store and the policy engine."""
    settings.data.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url)
    upgrade(db.write_engine)
    assert settings.blob_root is not None
    blobs = FilesystemBlobStore(settings.blob_root)
    policy = PolicyPoint(
        kind=settings.policy_engine,
        policy_dir=settings.policy_dir,
        opa_url=settings.opa_url,
        timeout_ms=settings.policy_timeout_ms,
    )
    audit_log = AuditLog(clock=clock)
    governor = Governor(db, policy, audit_log, clock)
    return Services(
        settings=settings,
        db=db,
        blobs=blobs,
        policy=policy,
        audit=audit_log,
        governor=governor,
        authenticator=Authenticator(db),
        signer=load_or_create_signing_key(settings.audit_key_path or settings.data / "audit.key"),
        downloads=DownloadLinks.from_settings(settings),
    )
