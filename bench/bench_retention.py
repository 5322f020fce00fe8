"""Retention and garbage collection at scale (issue R7's targets; no external anchor).

* **Retention pass**: 100,000 versions in 1,000 packages (4 repositories of
  250 packages, 100 versions each), one file each, on the embedded defaults
  (SQLite WAL with synchronous=FULL, the embedded Rego engine over ``rego/``).
  Rule set: keep the 70 most recent versions of every package, and delete what
  was pushed over 180 days ago: 30,000 candidate deletions, each one decided.
  Some versions carry a release tag (``v...``, which the policy refuses to
  let retention delete), a legal hold label, or a pull within the last 30
  days: those deletions are vetoed. Every candidate deletion is a governed
  ``retain`` action (decided in chunks on a small thread pool, each chunk's
  changes and audit events committed through the governor's group committer),
  so each decision is an audit event of its own; the pass ends with the report.
  The cost is per decision (about 1.5 ms here, most of it the embedded
  engine), so a pass with 40,000 candidates takes a third longer.
* **GC**: 100,000 blobs in the store (64 bytes each), half referenced by files
  rows and half garbage older than the grace period; one mark-and-sweep.

Both data sets are seeded directly with bulk inserts (SQLAlchemy Core
``executemany``) and direct file writes, not through the API: the subject is
the pass, not the pushes. There is no external product to anchor against
here, so the table prints the issue's target in the anchor column.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from bench._util import Row, Timer, print_limit, print_table
from registry.auth import SYSTEM
from registry.config import Settings
from registry.db.models import ArtifactFile, Blob, Label, Package, Repository, Tag, Version
from registry.gc import GarbageCollector
from registry.retention import rulesets
from registry.retention.rules import RuleSet
from registry.retention.runner import RetentionRunner
from registry.services import Services, build_services

# ARBITER_BENCH_SCALE=0.1 runs a tenth of it (a quick look, not the target).
SCALE = float(os.environ.get("ARBITER_BENCH_SCALE", "1"))
REPOSITORIES = 4
PACKAGES = max(REPOSITORIES, int(1_000 * SCALE))
VERSIONS_PER_PACKAGE = 100
BLOBS = int(100_000 * SCALE)
TARGET_S = 60.0
CHUNK = 5_000
RULES = {
    "rules": [{"name": "keep 70, drop old", "keep_last": 70, "older_than_days": 180}],
    "recovery_days": 14,
}


def _services(data: Path) -> Services:
    return build_services(Settings(data=data, policy_watch=False, checkpoint_interval_s=0))


def _insert(services: Services, model: Any, rows: list[dict[str, Any]]) -> None:
    table = model.__table__
    with services.db.writer() as session:
        conn = session.connection()
        for start in range(0, len(rows), CHUNK):
            conn.execute(insert(table), rows[start : start + CHUNK])


def _digest(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def seed_versions(services: Services, now: datetime) -> dict[str, int]:
    """100,000 versions: ages 5 to 500 days, some tagged, held or recently pulled."""
    _insert(
        services,
        Repository,
        [
            {"id": r + 1, "name": f"bench-{r}", "format": "generic", "kind": "hosted",
             "description": "", "labels": {}, "created_at": now}
            for r in range(REPOSITORIES)
        ],
    )  # fmt: skip
    _insert(
        services,
        Package,
        [
            {
                "id": p + 1,
                "repository_id": p % REPOSITORIES + 1,
                "name": f"pkg-{p}",
                "created_at": now,
            }
            for p in range(PACKAGES)
        ],
    )
    versions, files, blobs, tags, labels = [], [], [], [], []
    vid = 0
    for p in range(PACKAGES):
        for k in range(VERSIONS_PER_PACKAGE):
            vid += 1
            age = timedelta(days=(VERSIONS_PER_PACKAGE - k) * 5, minutes=p)
            pulled = now - timedelta(days=3) if vid % 17 == 0 else now - timedelta(days=400)
            versions.append(
                {"id": vid, "package_id": p + 1, "version": f"1.{k}.0", "created_at": now - age,
                 "created_by": "bench", "downloads": 1, "last_pulled_at": pulled,
                 "provenance": {}, "meta": {}}
            )  # fmt: skip
            digest = _digest(f"version-{vid}")
            blobs.append({"digest": digest, "size": 1024, "media_type": "", "created_at": now})
            files.append(
                {"version_id": vid, "filename": "f.bin", "blob_digest": digest, "size": 1024,
                 "media_type": "application/octet-stream", "created_at": now - age, "meta": {}}
            )  # fmt: skip
            if k % 10 == 0:
                tags.append({"package_id": p + 1, "name": f"v1.{k}.0", "version_id": vid,
                             "updated_at": now})  # fmt: skip
            if vid % 101 == 0:
                labels.append({"version_id": vid, "key": "legal-hold", "value": "case-1"})
    for model, rows in ((Version, versions), (Blob, blobs), (ArtifactFile, files), (Tag, tags)):
        _insert(services, model, rows)
    _insert(services, Label, labels)
    return {"versions": len(versions), "tags": len(tags), "labels": len(labels)}


def measure_retention() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="arbiter-bench-retention-") as tmp:
        services = _services(Path(tmp))
        try:
            now = datetime.now(UTC)
            with Timer() as seeding:
                seeded = seed_versions(services, now)
            rulesets.save(services.governor, SYSTEM, RuleSet.model_validate(RULES))
            runner = RetentionRunner(services)
            with Timer() as preview_timer:
                preview = runner.preview()
            with Timer() as run_timer:
                run_id = runner.run(SYSTEM, confirm=True)
            with services.db.reader() as session:
                conn = session.connection()
                row = conn.execute(
                    text("SELECT deleted, vetoed, kept, errors FROM retention_runs WHERE id = :id"),
                    {"id": run_id},
                ).one()
                events = conn.execute(
                    text("SELECT count(*) FROM audit_events WHERE action = 'retain'")
                ).scalar_one()
            return {
                "seeded": seeded,
                "seed_s": seeding.seconds,
                "preview_s": preview_timer.seconds,
                "candidates": len(preview.plan.deletions),
                "run_s": run_timer.seconds,
                "deleted": row.deleted,
                "vetoed": row.vetoed,
                "kept": row.kept,
                "errors": row.errors,
                "retain_events": events,
            }
        finally:
            services.close()


def seed_blobs(services: Services, root: Path) -> int:
    """100,000 blob files (half referenced by a files row), all older than the grace period."""
    old = datetime.now(UTC) - timedelta(days=2)
    stamp = old.timestamp()
    store = root / "sha256"
    blobs, versions, files = [], [], []
    repository = {"id": 1, "name": "gc", "format": "generic", "kind": "hosted",
                  "description": "", "labels": {}, "created_at": old}  # fmt: skip
    _insert(services, Repository, [repository])
    _insert(services, Package, [{"id": 1, "repository_id": 1, "name": "p", "created_at": old}])
    for i in range(BLOBS):
        body = f"blob {i:08d}".encode().ljust(64, b".")
        hexa = hashlib.sha256(body).hexdigest()
        folder = store / hexa[:2]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / hexa
        path.write_bytes(body)
        os.utime(path, (stamp, stamp))
        digest = "sha256:" + hexa
        blobs.append({"digest": digest, "size": len(body), "media_type": "", "created_at": old})
        if i % 2 == 0:
            versions.append({"id": i + 1, "package_id": 1, "version": str(i), "created_at": old,
                             "created_by": "", "downloads": 0, "last_pulled_at": None,
                             "provenance": {}, "meta": {}})  # fmt: skip
            files.append({"version_id": i + 1, "filename": "f", "blob_digest": digest,
                          "size": len(body), "media_type": "", "created_at": old,
                          "meta": {}})  # fmt: skip
    for model, rows in ((Blob, blobs), (Version, versions), (ArtifactFile, files)):
        _insert(services, model, rows)
    return BLOBS - len(files)


def measure_gc() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="arbiter-bench-gc-") as tmp:
        services = _services(Path(tmp))
        try:
            assert services.settings.blob_root is not None
            with Timer() as seeding:
                garbage = seed_blobs(services, services.settings.blob_root)
            with Timer() as gc_timer:
                report = GarbageCollector(services).collect(SYSTEM)
            return {
                "seed_s": seeding.seconds,
                "gc_s": gc_timer.seconds,
                "garbage": garbage,
                "deleted": report.deleted,
                "scanned": report.scanned,
                "bytes": report.bytes_reclaimed,
            }
        finally:
            services.close()


def main() -> None:
    started = time.perf_counter()
    retention = measure_retention()
    gc = measure_gc()
    seeded = retention["seeded"]
    print(
        f"retention: {seeded['versions']} versions in {PACKAGES} packages "
        f"({seeded['tags']} release tags, {seeded['labels']} legal holds), seeded in "
        f"{retention['seed_s']:.1f} s by bulk insert; preview {retention['preview_s']:.1f} s, "
        f"{retention['candidates']} candidate deletions; run: {retention['deleted']} deleted, "
        f"{retention['vetoed']} vetoed, {retention['kept']} kept by rule, "
        f"{retention['errors']} errors; {retention['retain_events']} retain decisions audited "
        f"({retention['run_s'] / max(retention['retain_events'], 1) * 1000:.2f} ms per decision, "
        "plan and report included)"
    )
    print(
        f"gc: {gc['scanned']} blobs scanned ({gc['garbage']} garbage), seeded in "
        f"{gc['seed_s']:.1f} s; {gc['deleted']} deleted, {gc['bytes']} bytes reclaimed"
    )
    print("no external anchor exists for these: the anchor column is the issue's target")
    print_table(
        "retention and GC at 100,000 (s, lower is better)",
        [
            Row("retention pass (100k)", retention["run_s"], TARGET_S, "s", False, 1.0),
            Row("gc mark+sweep (100k)", gc["gc_s"], TARGET_S, "s", False, 1.0),
        ],
        anchor="target",
    )
    print_limit("retention pass", retention["run_s"], TARGET_S, "s")
    print_limit("gc", gc["gc_s"], TARGET_S, "s")
    print(f"(whole benchmark {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
