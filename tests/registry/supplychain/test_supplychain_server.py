"""On a real server: the rescan job notices a vulnerability import, and the CLI shows findings."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from registry.cli.main import app as cli
from tests.registry.conftest import ServerFactory
from tests.registry.supplychain.builders import wheel

WHEEL = "/generic/files/demo/1.0/demo-1.0-py3-none-any.whl"


def test_a_running_server_rescans_after_an_import(
    server_factory: ServerFactory, osv_records: Path
) -> None:
    server = server_factory(env={"ARBITER_SCAN_RESCAN_INTERVAL_S": "1"})
    headers = server.headers()
    created = httpx.post(
        server.url + "/api/v1/repositories",
        json={"name": "files", "format": "generic"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    pushed = httpx.put(
        server.url + WHEEL, content=wheel(requires=("langchain==0.0.200",)), headers=headers
    )
    assert pushed.status_code == 201, pushed.text
    assert httpx.get(server.url + WHEEL, headers=headers).status_code == 200

    runner = CliRunner()
    imported = runner.invoke(
        cli, ["vulndb", "import", str(osv_records), "--data", str(server.data)]
    )
    assert imported.exit_code == 0, imported.output

    deadline = time.monotonic() + 30
    status = 200
    while time.monotonic() < deadline and status == 200:
        time.sleep(0.5)
        status = httpx.get(server.url + WHEEL, headers=headers).status_code
    assert status == 403, "the next pull after the rescan is refused"

    shown = runner.invoke(cli, ["findings", "files/demo/1.0"], env=server.client_env())
    assert shown.exit_code == 0, shown.output
    assert "PYSEC-2023-138" in shown.output and "critical" in shown.output
    as_json = runner.invoke(cli, ["findings", "files/demo/1.0", "--json"], env=server.client_env())
    assert '"PYSEC-2023-138"' in as_json.output
    missing = runner.invoke(cli, ["findings", "files/demo"], env=server.client_env())
    assert missing.exit_code == 1
