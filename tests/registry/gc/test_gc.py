"""Garbage collection: grace period, dry run, usage, the re-check at delete time, and a
collection (with retention runs) concurrent with pushes and pulls on a real server."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from audit import verify_log
from registry.auth.subject import SYSTEM
from registry.db import Database
from registry.gc import GarbageCollector
from tests.registry.conftest import LiveServer, ServerFactory
from tests.registry.retention.conftest import RetentionApp, retention_app

__all__ = ["retention_app"]


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _orphan(app: RetentionApp, data: bytes) -> str:
    """Bytes committed to the store with no row at all (a push that died mid-way)."""
    staged = asyncio.run(app.services.blobs.stage(_body(data)))
    return app.services.blobs.commit(staged).digest


def test_gc_spares_young_and_referenced_blobs_and_reports_usage(
    retention_app: RetentionApp,
) -> None:
    app = retention_app
    app.create_repo("files")
    keep, drop = os.urandom(3000), os.urandom(2000)
    app.push("files", "tool", "1.0", keep)
    app.push("files", "tool", "2.0", drop)
    deleted = app.client.delete("/generic/files/tool/2.0", headers=app.headers())
    assert deleted.status_code == 204
    orphan = _orphan(app, b"orphan bytes")

    def gc(**params: Any) -> dict[str, Any]:
        response = app.client.post("/api/v1/gc", params=params, headers=app.headers())
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    # (other features may store blobs of their own, an SBOM per push say: the
    # assertions look at this test's bytes only)
    dropped = "sha256:" + hashlib.sha256(drop).hexdigest()
    young = gc(dry_run=True)
    assert young["deleted"] == 0 and young["young"] >= 2, "both are younger than an hour"
    dry = gc(dry_run=True, grace_minutes=0)
    assert {orphan, dropped} <= set(dry["digests"])
    assert dry["bytes_reclaimed"] >= len(drop) + len(b"orphan bytes")
    assert app.services.blobs.exists(orphan), "a dry run deletes nothing"
    assert app.scalar("SELECT count(*) FROM audit_events WHERE action = 'gc.run'") == 0

    done = gc(grace_minutes=0)
    assert done["deleted"] == dry["deleted"] and done["bytes_reclaimed"] == dry["bytes_reclaimed"]
    assert {orphan, dropped} <= set(done["digests"])
    kept = "sha256:" + hashlib.sha256(keep).hexdigest()
    assert kept not in done["digests"] and app.services.blobs.exists(kept)
    assert not app.services.blobs.exists(orphan)
    assert done["usage"]["files"]["bytes"] == len(keep)
    assert done["usage"]["files"]["versions"] == 1
    assert app.pull("files", "tool", "1.0") == keep
    assert app.scalar("SELECT count(*) FROM audit_events WHERE action = 'gc.run'") == 1
    assert gc(grace_minutes=0)["deleted"] == 0


def test_a_reference_committed_after_the_mark_rescues_the_blob(
    retention_app: RetentionApp,
) -> None:
    app = retention_app
    app.create_repo("files")
    data = os.urandom(4096)
    app.push("files", "tool", "1.0", data)
    assert app.client.delete("/generic/files/tool/1.0", headers=app.headers()).status_code == 204

    class RacingCollector(GarbageCollector):
        def _sweep(self, chunk: list[Any], report: Any, since: Any) -> None:
            app.push("files", "tool", "2.0", data)  # the same bytes, pushed after the mark
            super()._sweep(chunk, report, since)

    report = RacingCollector(app.services).collect(SYSTEM, grace_minutes=0)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert report.rescued >= 1 and digest not in report.digests
    assert app.pull("files", "tool", "2.0") == data


# -- concurrent with pushes and pulls ------------------------------------------------

POOL = [f"shared content {i}".encode() * 50 for i in range(8)]
# Pushes in flight are protected by the grace period (an hour by default); the test
# uses a short one so that garbage collects within seconds while pushes race it.
GRACE_S = 2.0


class Traffic:
    """Pushers and pullers against a live server; every acknowledged push is remembered."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.stop = threading.Event()
        self.pushed: dict[str, str] = {}  # "package/version" -> sha256
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.pulls = 0
        self.retried = 0

    def pusher(self, name: str) -> None:
        rng = random.Random(name)
        with httpx.Client(base_url=self.server.url, headers=self.server.headers()) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                body = rng.choice(POOL) if rng.random() < 0.5 else os.urandom(rng.randint(1, 4096))
                url = f"/generic/files/live-{name}/{n}/f.bin"
                response = client.put(url, content=body)
                if response.status_code == 201:
                    with self.lock:
                        self.pushed[f"live-{name}/{n}"] = hashlib.sha256(body).hexdigest()
                elif response.status_code >= 500 or _overloaded(response):
                    self.retried += 1  # lost a race to a sweep (PostgreSQL), or fail-closed
                else:
                    self.errors.append(f"push {url}: {response.status_code} {response.text}")

    def puller(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.server.url, headers=self.server.headers()) as client:
            while not self.stop.is_set():
                with self.lock:
                    known = list(self.pushed.items())
                if not known:
                    time.sleep(0.01)
                    continue
                ref, sha = rng.choice(known)
                response = client.get(f"/generic/files/{ref}/f.bin")
                if _overloaded(response):
                    continue
                if (
                    response.status_code != 200
                    or hashlib.sha256(response.content).hexdigest() != sha
                ):
                    self.errors.append(f"pull {ref}: {response.status_code} {response.text[:200]}")
                self.pulls += 1


def _overloaded(response: httpx.Response) -> bool:
    """The decision point failed closed (a shared machine under load): refused, not wrong."""
    return response.status_code == 403 and "policy engine unavailable" in response.text


@pytest.mark.slow
def test_retention_and_gc_concurrent_with_pushes_and_pulls(
    server_factory: ServerFactory, database_url: str, tmp_path: Path
) -> None:
    server = server_factory(
        env={"ARBITER_DATABASE_URL": database_url, "ARBITER_POLICY_TIMEOUT_MS": "5000"}
    )
    admin = httpx.Client(base_url=server.url, headers=server.headers(), timeout=120)
    assert admin.post(
        "/api/v1/repositories", json={"name": "files", "format": "generic"}
    ).is_success
    for i in range(12):  # old versions: some bytes the pushers push again, racing the sweep
        body = POOL[i % len(POOL)] if i % 2 else os.urandom(1000 + i)
        assert admin.put(f"/generic/files/old/{i}/f.bin", content=body).status_code == 201
    rules = {
        "rules": [
            {"name": "live", "kind": "protect", "packages": ["live-*"]},
            {"name": "old", "packages": ["old"], "keep_last": 2},
        ],
        "recovery_days": 0,
    }
    assert admin.put("/api/v1/retention/rules", json=rules).status_code == 200

    traffic = Traffic(server)
    threads = [threading.Thread(target=traffic.pusher, args=(f"p{i}",)) for i in range(3)]
    threads += [threading.Thread(target=traffic.puller, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    collected = 0
    try:
        for round_ in range(4):
            run = admin.post("/api/v1/retention/runs", params={"wait": True, "confirm": True})
            assert run.status_code == 200, run.text
            assert run.json()["status"] == "finished"
            time.sleep(GRACE_S)  # the old versions' blobs age past the grace period
            gc = admin.post("/api/v1/gc", params={"grace_minutes": GRACE_S / 60})
            assert gc.status_code == 200, gc.text
            collected += gc.json()["deleted"]
            if round_ < 3:  # more old versions become garbage for the next round
                for i in range(3):
                    body = POOL[i] if i == 0 else os.urandom(500 + i)
                    admin.put(f"/generic/files/old/{round_}-{i}/f.bin", content=body)
    finally:
        traffic.stop.set()
        for thread in threads:
            thread.join()
    assert not traffic.errors, traffic.errors[:5]
    assert traffic.pushed and traffic.pulls
    assert collected > 0

    final = admin.post("/api/v1/gc", params={"grace_minutes": GRACE_S / 60}).json()
    db = Database(database_url)
    try:
        with db.reader() as session:
            conn = session.connection()
            rows = conn.execute(
                text(
                    "SELECT p.name, v.version, f.blob_digest FROM files f "
                    "JOIN versions v ON v.id = f.version_id JOIN packages p ON p.id = v.package_id"
                )
            ).all()
            live = {f"{name}/{version}": digest for name, version, digest in rows}
            for ref, sha in traffic.pushed.items():
                assert live.get(ref) == f"sha256:{sha}", f"{ref} was pushed and must stay"
            assert len([k for k in live if k.startswith("old/")]) == 2, "keep_last 2 held"
            verify_log(conn, _verifier(server))
    finally:
        db.dispose()
    blob_root = server.data / "blobs" / "sha256"
    for digest in set(live.values()):
        hexa = digest.removeprefix("sha256:")
        content = (blob_root / hexa[:2] / hexa).read_bytes()
        assert hashlib.sha256(content).hexdigest() == hexa, f"{digest} damaged"
    for ref, sha in list(traffic.pushed.items())[:50]:
        got = admin.get(f"/generic/files/{ref}/f.bin")
        assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == sha
    assert final["usage"]["files"]["versions"] == len(live)
    admin.close()


def _verifier(server: LiveServer) -> Any:
    from audit import load_or_create_signing_key

    return load_or_create_signing_key(server.data / "keys" / "audit-ed25519.pem").verifier()
