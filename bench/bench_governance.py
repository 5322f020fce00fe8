"""Governance overhead on a small generic pull: policy decision + audit append.

Issue R2's target: the governance layer adds at most 2 ms (p50) to a small
generic pull. Measured in-process on the embedded defaults (SQLite WAL with
synchronous=FULL, the embedded Rego engine over rego/):

* ours: ``Governor.govern`` for a pull: facts, policy input, decision, and one
  transaction holding the download counter update and the audit event;
* anchor: the same download counter update in its own transaction, with no
  facts, no policy and no audit (what an ungoverned registry would do).

The difference of the medians is the governance overhead.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from sqlmodel import Session

from bench._util import Row, print_limit, print_table
from registry.auth import SYSTEM
from registry.bootstrap import ensure_admin
from registry.config import Settings
from registry.formats.generic import records
from registry.governance import PULL, Action, RequestContext, Resource
from registry.governance.downloads import download
from registry.services import Services, build_services

ROUNDS = 2000
WARMUP = 200
TARGET_OVERHEAD_MS = 2.0


def _setup(data: Path) -> Services:
    services = build_services(Settings(data=data, policy_watch=False, checkpoint_interval_s=0))
    ensure_admin(services.governor, "arb_bench_token_0123456789")
    with services.db.writer() as session:
        from registry.db.models import Repository

        session.add(Repository(name="files", format="generic"))
    from registry.blobs import BlobRef

    ref = BlobRef(digest="sha256:" + "0" * 64, size=4096)
    with services.db.writer() as session:
        from registry.db.models import Blob

        session.add(Blob(digest=ref.digest, size=ref.size))
        session.flush()
        records.add_file(
            session,
            "files",
            "tool",
            "1.0",
            "tool.bin",
            ref,
            created_by="admin",
            media_type="application/octet-stream",
            provenance={},
        )
    return services


def _count(session: Session) -> None:
    version, _row = records.find_file(session, "files", "tool", "1.0", "tool.bin")
    assert version.id is not None
    session.connection().execute(*download(version.id))


def _time(call: object, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def measure() -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory(prefix="arbiter-bench-gov-") as tmp:
        services = _setup(Path(tmp))
        try:
            action = Action(
                verb=PULL,
                resource=Resource(
                    repository="files",
                    format="generic",
                    name="tool",
                    version="1.0",
                    file="tool.bin",
                ),
            )
            context = RequestContext(request_id="bench", client="bench")

            def governed() -> None:
                services.governor.govern(SYSTEM, action, context, _count)

            def ungoverned() -> None:
                with services.db.writer() as session:
                    _count(session)

            _time(governed, WARMUP)
            _time(ungoverned, WARMUP)
            ours, anchor = [], []
            for _ in range(4):  # interleave, so load from elsewhere hits both alike
                ours += _time(governed, ROUNDS // 4)
                anchor += _time(ungoverned, ROUNDS // 4)
            return ours, anchor
        finally:
            services.close()


def main() -> None:
    ours, anchor = measure()
    p50, p50_anchor = statistics.median(ours), statistics.median(anchor)
    p99 = statistics.quantiles(ours, n=100)[98]
    p99_anchor = statistics.quantiles(anchor, n=100)[98]
    print(f"{ROUNDS} small generic pulls, SQLite WAL synchronous=FULL, embedded Rego engine")
    print_table(
        "governed pull vs. the bare state change (ms, lower is better)",
        [
            Row("p50 latency", p50, p50_anchor, "ms", higher_is_better=False),
            Row("p99 latency", p99, p99_anchor, "ms", higher_is_better=False),
        ],
        anchor="ungoverned",
    )
    print_limit("governance overhead p50", p50 - p50_anchor, TARGET_OVERHEAD_MS, "ms")


if __name__ == "__main__":
    main()
