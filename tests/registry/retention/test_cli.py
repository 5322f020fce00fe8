"""``arbiter retention``, ``arbiter restore`` and ``arbiter gc`` against a real server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from registry.cli.main import app
from tests.registry.conftest import LiveServer, ServerFactory

pytestmark = pytest.mark.slow


def arbiter(server: LiveServer, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=server.client_env())


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    return result


def test_cli_previews_runs_restores_and_collects(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = server_factory()
    ok(arbiter(server, "repo", "create", "files", "--format", "generic"))
    bodies = {}
    for i in range(3):
        path = tmp_path / f"tool-{i}.bin"
        bodies[i] = os.urandom(1000 + i)
        path.write_bytes(bodies[i])
        ok(arbiter(server, "push", str(path), f"files/tool/1.{i}.0"))

    refused = arbiter(server, "retention", "rules", "add", "--name", "bad", "--include", "(")
    assert refused.exit_code != 0 and "include" in refused.stderr
    refused = arbiter(server, "retention", "rules", "add", "--name", "bad", "--keep-last", "-1")
    assert refused.exit_code != 0 and "keep_last" in refused.stderr

    ok(arbiter(server, "retention", "rules", "add", "--name", "keep one", "--keep-last", "1"))
    preview = ok(arbiter(server, "retention", "run", "--dry-run", "--repo", "files", "--json"))
    listed = json.loads(preview.stdout)
    assert [d["version"] for d in listed["deletions"]] == ["1.0.0", "1.1.0"]
    assert listed["bytes_reclaimed"] == len(bodies[0]) + len(bodies[1])
    table = ok(arbiter(server, "retention", "run", "--dry-run"))
    assert "keep-one" in table.stdout and "2 of 3 versions would be deleted" in table.stdout

    ran = ok(arbiter(server, "retention", "run", "--json"))
    run = json.loads(ran.stdout)
    assert run["status"] == "finished" and run["deleted"] == 2
    assert sorted(e["version"] for e in run["report"]["deleted"]) == ["1.0.0", "1.1.0"]
    ok(arbiter(server, "retention", "runs"))
    ok(arbiter(server, "retention", "trash"))

    ok(arbiter(server, "restore", "files/tool/1.0.0"))
    out = tmp_path / "back.bin"
    ok(arbiter(server, "pull", "files/tool/1.0.0/tool-0.bin", "-o", str(out)))
    assert out.read_bytes() == bodies[0]
    missing = arbiter(server, "restore", "files/tool/9.9.9")
    assert missing.exit_code != 0 and "not in the trash" in missing.stderr

    dry = ok(arbiter(server, "gc", "--dry-run", "--grace-minutes", "0", "--json"))
    assert json.loads(dry.stdout)["deleted"] == 0, "trashed 1.1.0 is still restorable"
    ok(arbiter(server, "gc", "--grace-minutes", "0"))
    history = ok(arbiter(server, "retention", "rules", "history"))
    assert "keep-one" in history.stdout
    assert httpx.get(server.url + "/readyz").status_code == 200
