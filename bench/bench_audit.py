"""Audit log throughput: appends, verification, export of a million events.

What is measured, on the durability the server uses in production:

* appends/s with one writer and with 8 concurrent writers, on SQLite (WAL,
  ``synchronous=FULL``: every COMMIT fsyncs before it returns) and on a
  throwaway PostgreSQL 15 with its durable defaults (``fsync=on``,
  ``synchronous_commit=on``: every COMMIT waits for the WAL flush). Each event
  is a realistic decided push: the decision plus the full policy input in
  ``details`` (~1.3 kB of canonical JSON). An append counts when its
  transaction has committed, i.e. when it is durable;
* chain + tree + checkpoint verification rate over the million events;
* export of 1,000,000 events (wall time, and peak RSS of the exporting process
  against an export of 100,000, to show memory stays flat); offline
  verification of an export.

The anchor is Tessera's published figure, about 2,900 writes/s on a 12-core
machine with POSIX storage (not re-measured here: it is a Go server).

Run with ``python -m bench audit`` or ``python -m bench.bench_audit``. Sizes:
``ARBITER_BENCH_AUDIT_EVENTS`` (default 1,000,000) for the export/verify log.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine

from audit import (
    AuditLog,
    EventDraft,
    GroupCommitter,
    NoteSigner,
    PreparedDraft,
    create_checkpoint,
    export_events,
    install_v1,
    prepare,
    sqlite_immediate,
    verify_database,
    verify_export,
)
from audit.canonical import canonical_json, event_body, sha256_hex
from audit.events import GENESIS_HASH

ROOT = Path(__file__).resolve().parents[1]
TESSERA_WRITES_PER_S = 2900.0
TESSERA_NOTE = "Tessera ~2,900 writes/s on 12 cores, POSIX storage (published)"
TARGET_SQLITE_APPENDS = 5000.0
TARGET_VERIFY = 200_000.0
TARGET_EXPORT_S = 60.0
THREADS = 8
EXPORT_EVENTS = int(os.environ.get("ARBITER_BENCH_AUDIT_EVENTS", "1000000"))
DURABILITY = {
    "sqlite": "WAL, synchronous=FULL (each COMMIT fsyncs the WAL)",
    "postgres": "fsync=on, synchronous_commit=on (each COMMIT waits for the WAL flush)",
}


# -- events -------------------------------------------------------------------


def policy_input(i: int) -> dict[str, Any]:
    """A policy input like the registry's for a push (what details["input"] holds)."""
    return {
        "version": 1,
        "action": "push",
        "subject": {"id": f"ci-{i % 7}", "kind": "robot", "roles": ["writer"], "teams": ["core"]},
        "resource": {"repository": "docker-local", "format": "oci", "name": "team/app",
                     "version": f"1.{i % 50}.{i % 7}", "digest": "sha256:" + f"{i:064x}"},
        "artifact": {"size": 48_000_000 + i, "created_at": "2026-11-28T12:00:00Z",
                     "labels": {"team": "core"}, "tags": ["latest"],
                     "sbom": {"licenses": ["MIT", "Apache-2.0"],
                              "purls": [f"pkg:pypi/dep-{n}@1.{n}.0" for n in range(6)]},
                     "vulnerabilities": {"critical": 0, "high": 1, "ids": ["CVE-2026-0001"]},
                     "last_pulled_at": None, "downloads": i,
                     "provenance": {"pipeline": str(1000 + i), "commit": f"{i:040x}"}},
        "context": {"time": "2026-11-28T12:00:00Z", "request_id": f"req-{i}",
                    "client": "docker/27", "stage": "content"},
    }  # fmt: skip


def bench_draft(i: int) -> EventDraft:
    """A decided push with the whole policy input in its details."""
    doc = policy_input(i)
    return EventDraft(
        actor={"id": doc["subject"]["id"], "kind": "robot"},
        action="push",
        resource=doc["resource"],
        outcome="allowed",
        decision={"allow": True, "reasons": [], "obligations": {}, "decision_id": f"d-{i}",
                  "policy_revision": "sha256:" + "b" * 64, "engine": "embedded",
                  "elapsed_us": 150, "input_digest": "sha256:" + "c" * 64},
        details={"stage": "content", "input": doc},
    )  # fmt: skip


# -- databases ----------------------------------------------------------------


def sqlite_engine(path: Path) -> Engine:
    engine = sqlite_immediate(create_engine(f"sqlite:///{path}"))  # WAL + synchronous=FULL
    with engine.begin() as conn:
        install_v1(conn)
    return engine


def postgres_engine(url: str) -> Engine:
    engine = create_engine(url, pool_size=THREADS + 2)
    with engine.begin() as conn:
        install_v1(conn)
    return engine


# -- append scenarios ---------------------------------------------------------


@dataclass(frozen=True)
class Result:
    label: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def line(self) -> str:
        ratio = self.rate / TESSERA_WRITES_PER_S
        return (
            f"  {self.label:<52} {self.events:>7} ev {self.seconds:7.2f} s "
            f"{self.rate:9,.0f}/s  {ratio:5.2f}x Tessera"
        )


def one_per_transaction(engine: Engine, n: int, offset: int) -> float:
    log, started = AuditLog(), time.perf_counter()
    for i in range(offset, offset + n):
        with engine.begin() as conn:
            log.append(conn, bench_draft(i))
    return time.perf_counter() - started


def batched(engine: Engine, n: int, offset: int, batch: int = 100) -> float:
    log, started = AuditLog(), time.perf_counter()
    for start in range(offset, offset + n, batch):
        with engine.begin() as conn:
            log.append_many(conn, [bench_draft(i) for i in range(start, start + batch)])
    return time.perf_counter() - started


def _threads(count: int, work: Callable[[int], None]) -> float:
    barrier = threading.Barrier(count + 1)
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        barrier.wait()
        try:
            work(worker)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def threads_one_per_transaction(engine: Engine, per_thread: int, offset: int) -> float:
    log = AuditLog()

    def work(worker: int) -> None:
        base = offset + worker * per_thread
        for i in range(base, base + per_thread):
            with engine.begin() as conn:
                log.append(conn, bench_draft(i))

    return _threads(THREADS, work)


def threads_group_commit(
    engine: Engine, per_thread: int, offset: int, *, units: bool
) -> tuple[float, float]:
    """Each thread prepares a draft, submits it and waits for its durable ack.

    ``units``: each draft is a unit of work (what a state change plus its event
    costs: one savepoint each); otherwise a bare draft (a denial, a reload),
    which the committer coalesces into one ``append_many`` per commit.
    """
    log = AuditLog()

    def unit(prepared: PreparedDraft) -> Callable[[Connection], object]:
        return lambda conn: log.append(conn, prepared)

    with GroupCommitter(engine, log=log) as committer:

        def work(worker: int) -> None:
            base = offset + worker * per_thread
            for i in range(base, base + per_thread):
                prepared = prepare(bench_draft(i))
                if units:
                    committer.run(unit(prepared))
                else:
                    committer.append(prepared).result()

        seconds = _threads(THREADS, work)
        per_batch = committer.units / max(1, committer.batches)
    return seconds, per_batch


def append_scenarios(engine: Engine, backend: str, scale: float) -> list[Result]:
    single, batch, per_thread, grouped = (int(x * scale) for x in (1500, 20000, 250, 1500))
    results = [Result(f"{backend} 1 writer, 1 event per transaction", single,
                      one_per_transaction(engine, single, 0))]  # fmt: skip
    results.append(Result(f"{backend} 1 writer, 100 events per transaction", batch,
                          batched(engine, batch, 10**6)))  # fmt: skip
    seconds = threads_one_per_transaction(engine, per_thread, 2 * 10**6)
    results.append(Result(f"{backend} {THREADS} threads, 1 event per transaction",
                          THREADS * per_thread, seconds))  # fmt: skip
    for units, what, offset in ((True, "units", 3), (False, "appends", 4)):
        seconds, per_batch = threads_group_commit(engine, grouped, offset * 10**6, units=units)
        label = f"{backend} {THREADS} threads, group-committed {what} (~{per_batch:.1f}/commit)"
        results.append(Result(label, THREADS * grouped, seconds))
    return results


# -- the million-event log ----------------------------------------------------


def _time_text(i: int) -> str:
    seconds, micros = divmod(i, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return (
        f"2026-11-{1 + hours // 24:02d}T{hours % 24:02d}:{minutes:02d}:{seconds:02d}.{micros:06d}Z"
    )


def bulk_fill(path: Path, n: int, *, compact: bool = False) -> float:
    """Write ``n`` valid chained events straight into SQLite (synchronous=OFF).

    Test-data generation only, not an append measurement: the pieces are
    canonical JSON built once, and every event is hashed exactly as
    :class:`audit.AuditLog` would. ``compact`` leaves the policy input out of
    ``details`` (~0.5 kB events instead of ~1.3 kB).
    """
    started = time.perf_counter()
    base = prepare(bench_draft(0))
    input_json = canonical_json(policy_input(0))
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    prev, rows = GENESIS_HASH, []
    sql = (
        "INSERT INTO audit_events (seq, time, actor, action, resource, decision, outcome, "
        "details, prev_hash, hash, actor_id, repository, name, version) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    for seq in range(1, n + 1):
        details = (
            f'{{"n":{seq},"stage":"content"}}'
            if compact
            else f'{{"input":{input_json},"n":{seq},"stage":"content"}}'
        )
        time_text = _time_text(seq)
        digest = sha256_hex(event_body(
            seq=seq, time=time_text, actor=base.actor_json, action="push",
            resource=base.resource_json, decision=base.decision_json, outcome="allowed",
            details=details, prev_hash=prev))  # fmt: skip
        rows.append((seq, time_text, base.actor_json, "push", base.resource_json,
                     base.decision_json, "allowed", details, prev, digest, "ci-0",
                     "docker-local", "team/app", "1.0.0"))  # fmt: skip
        prev = digest
        if len(rows) == 20_000:
            db.executemany(sql, rows)
            rows = []
    db.executemany(sql, rows)
    db.execute(
        "UPDATE audit_head SET last_seq = ?, last_hash = ?, last_time = ?",
        (n, prev, _time_text(n)),
    )
    db.execute("COMMIT")
    db.close()
    return time.perf_counter() - started


def verify_lines(url: str, signer: NoteSigner, label: str = "") -> list[str]:
    lines = []
    for workers in (1, os.cpu_count() or 1):
        report = verify_database(url, signer.public_key_text(), workers=workers)
        verdict = "met" if report.events_per_second >= TARGET_VERIFY else "MISSED"
        lines.append(
            f"  verify chain + tree + checkpoint{label}, {report.workers} process(es): "
            f"{report.seconds:6.1f} s  {report.events_per_second:9,.0f} events/s  "
            f"(target >= {TARGET_VERIFY:,.0f}/s: {verdict})"
        )
    return lines


def compact_log(workdir: Path, signer: NoteSigner, n: int) -> list[str]:
    """Verification of small events (no policy input in details): the rate
    depends on the bytes hashed per event."""
    path = workdir / "compact.db"
    sqlite_engine(path).dispose()
    bulk_fill(path, n, compact=True)
    engine = sqlite_engine(path)
    with engine.begin() as conn:
        create_checkpoint(conn, signer)
    engine.dispose()
    lines = [f"log of {n:,} compact events (~0.5 kB each: decision, no policy input)"]
    lines += verify_lines(f"sqlite:///{path}", signer)
    path.unlink()
    return lines


def export_child(url: str, out: str, last_seq: int) -> None:
    """Run in a fresh process: export, then print seconds and peak RSS as JSON."""
    import resource

    engine = create_engine(url)
    with engine.connect() as conn:
        summary = export_events(conn, out, first_seq=1, last_seq=last_seq)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": summary.seconds, "events": summary.count, "peak_kib": peak_kib}))


def run_export_child(url: str, out: Path, last_seq: int) -> dict[str, Any]:
    call = f"export_child({url!r}, {str(out)!r}, {last_seq})"
    code = f"from bench.bench_audit import export_child; {call}"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def million(workdir: Path, signer: NoteSigner) -> list[str]:
    path = workdir / "million.db"
    url = f"sqlite:///{path}"
    sqlite_engine(path).dispose()
    lines = [f"log of {EXPORT_EVENTS:,} events (~1.3 kB each)"]
    lines.append(
        f"  bulk load (test data, synchronous=OFF): {bulk_fill(path, EXPORT_EVENTS):.1f} s"
    )
    engine = sqlite_engine(path)
    started = time.perf_counter()
    with engine.begin() as conn:
        create_checkpoint(conn, signer)
    engine.dispose()
    lines.append(
        f"  first checkpoint (node cache for all events): {time.perf_counter() - started:.1f} s"
    )
    lines += verify_lines(url, signer)
    small = min(100_000, EXPORT_EVENTS)
    full = run_export_child(url, workdir / "full.jsonl", EXPORT_EVENTS)
    part = run_export_child(url, workdir / "part.jsonl", small)
    verdict = "met" if full["seconds"] < TARGET_EXPORT_S else "MISSED"
    lines.append(
        f"  export {full['events']:,} events: {full['seconds']:.1f} s "
        f"({full['events'] / full['seconds']:,.0f}/s; "
        f"target < {TARGET_EXPORT_S:.0f} s: {verdict}), "
        f"file {os.path.getsize(workdir / 'full.jsonl') / 1e9:.2f} GB"
    )
    lines.append(
        f"  peak RSS of the exporting process: {full['peak_kib'] / 1024:.0f} MiB for "
        f"{full['events']:,} events vs {part['peak_kib'] / 1024:.0f} MiB for {part['events']:,}"
    )
    started = time.perf_counter()
    verify_export(workdir / "part.jsonl", signer.public_key_text())
    seconds = time.perf_counter() - started
    lines.append(
        f"  verify-export offline, {part['events']:,} events: {seconds:.1f} s "
        f"({part['events'] / seconds:,.0f}/s)"
    )
    return lines


# -- main ---------------------------------------------------------------------


def _postgres(workdir: Path, scale: float) -> list[Result]:
    sys.path.insert(0, str(ROOT))
    from tests.pg import PostgresCluster, PostgresUnavailable

    try:
        cluster = PostgresCluster(settings={}).start()  # PostgreSQL's durable defaults
    except PostgresUnavailable as exc:
        print(f"  postgres: skipped ({exc})")
        return []
    try:
        engine = postgres_engine(cluster.create_database("bench_audit"))
        try:
            return append_scenarios(engine, "postgres", scale)
        finally:
            engine.dispose()
    finally:
        cluster.stop()


def main() -> None:
    """Print our figures beside the anchor and the targets."""
    scale = float(os.environ.get("ARBITER_BENCH_AUDIT_SCALE", "1"))
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"audit log benchmark; machine: {os.cpu_count()} cores, load average {load}")
    print(f"anchor: {TESSERA_NOTE}")
    for backend, text in DURABILITY.items():
        print(f"durability, {backend}: {text}")
    signer = NoteSigner.generate("bench.arbiter/audit")
    with tempfile.TemporaryDirectory(prefix="arbiter-bench-audit-") as tmp:
        workdir = Path(tmp)
        engine = sqlite_engine(workdir / "appends.db")
        try:
            results = append_scenarios(engine, "sqlite", scale)
        finally:
            engine.dispose()
        results += _postgres(workdir, scale)
        print("\nappends (acknowledged = committed = durable)")
        for result in results:
            print(result.line())
        best = max(r.rate for r in results if r.label.startswith("sqlite"))
        verdict = "met" if best >= TARGET_SQLITE_APPENDS else "MISSED"
        print(f"  target >= {TARGET_SQLITE_APPENDS:,.0f} durable appends/s on SQLite: {verdict} "
              f"(best {best:,.0f}/s)")  # fmt: skip
        print()
        for line in million(workdir, signer):
            print(line, flush=True)
        for line in compact_log(workdir, signer, min(EXPORT_EVENTS, 500_000)):
            print(line, flush=True)


if __name__ == "__main__":
    main()
