"""Two worker processes serve one database: every pull decided, counted and chained once.

Each granian worker has its own group committer; the audit chain stays one
chain because every commit takes SQLite's write lock (BEGIN IMMEDIATE) and
reads the head under it. Concurrent manifest GETs through both workers must
all succeed, each leave exactly one event and one counted download, and the
log must verify.
"""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from typer.testing import CliRunner

from registry.cli.main import app as cli
from tests.registry.conftest import ServerFactory
from tests.registry.formats.oci.oci_helpers import OCI_MANIFEST, make_image, push_image

NAME = "images/app"
PULLS_PER_CLIENT, CLIENTS = 60, 8


def test_two_workers_share_one_chain(server_factory: ServerFactory, tmp_path: Path) -> None:
    server = server_factory(data=tmp_path / "data", args=("--workers", "2"))
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    created = httpx.post(
        f"{server.url}/api/v1/repositories", json={"name": "images", "format": "oci"}, headers=admin
    )
    assert created.status_code == 201, created.text
    with httpx.Client(timeout=30) as client:
        push_image(client, server.url, NAME, make_image(), "v1", admin)

    def pull(_client_no: int) -> list[int]:
        # A client of its own per thread: new connections spread over both workers.
        with httpx.Client(timeout=60) as client:
            return [
                client.get(
                    f"{server.url}/v2/{NAME}/manifests/v1",
                    headers={**admin, "Accept": OCI_MANIFEST},
                ).status_code
                for _ in range(PULLS_PER_CLIENT)
            ]

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [status for batch in pool.map(pull, range(CLIENTS)) for status in batch]
    assert statuses == [200] * (PULLS_PER_CLIENT * CLIENTS)

    pids = {line for line in server.log_text().splitlines() if "Spawning worker" in line}
    assert len(pids) >= 2, "the server did not start two workers"
    events = httpx.get(
        f"{server.url}/api/v1/audit/events",
        params={"action": "pull", "outcome": "allowed", "limit": 10_000},
        headers=admin,
    )
    assert events.status_code == 200, events.text
    pulls = [e for e in json.loads(events.text) if e["resource"].get("name") == "app"]
    assert len(pulls) == PULLS_PER_CLIENT * CLIENTS
    with sqlite3.connect(f"file:{server.data / 'arbiter.db'}?mode=ro", uri=True) as db:
        downloads = [row[0] for row in db.execute("SELECT downloads FROM versions")]
    assert downloads == [PULLS_PER_CLIENT * CLIENTS]

    verified = CliRunner().invoke(cli, ["audit", "verify", "--data", str(server.data)])
    assert verified.exit_code == 0, verified.output
    assert "verified" in verified.output
