"""The ``arbiter`` client commands against a real ``arbiter serve`` process."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from registry.cli.main import app

pytestmark = pytest.mark.slow

FIVE_MIB = 5 * 1024 * 1024 + 123  # not a whole number of 1 MiB chunks
PATHSEND_METRIC = re.compile(r"^arbiter_http_pathsend_responses_total (\S+)$", re.MULTILINE)


def arbiter(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def admin(server, *args: str) -> Result:
    return arbiter(server.client_env(), *args)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    return result


def failed(result: Result) -> str:
    """A clean failure: non-zero, an 'error:' line, a hint, no traceback."""
    assert result.exit_code != 0, result.output
    assert "error:" in result.stderr, result.output
    assert "hint:" in result.stderr, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.stderr


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def random_file(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.write(os.urandom(size))
    return path


def pathsend_count(server) -> float:
    text = httpx.get(server.url + "/metrics").text
    match = PATHSEND_METRIC.search(text)
    return float(match.group(1)) if match else 0.0


def test_repo_create_list_delete(live_server) -> None:
    created = ok(admin(live_server, "repo", "create", "cli-files", "--format", "generic"))
    assert "created generic repository cli-files" in created.stdout

    table = ok(admin(live_server, "repo", "list"))
    assert "cli-files" in table.stdout
    listed = json.loads(ok(admin(live_server, "repo", "list", "--json")).stdout)
    assert {"name": "cli-files", "format": "generic"}.items() <= listed[0].items()

    again = failed(admin(live_server, "repo", "create", "cli-files", "--format", "generic"))
    assert "already exists" in again
    assert "409" in again

    ok(admin(live_server, "repo", "delete", "cli-files"))
    names = [r["name"] for r in json.loads(ok(admin(live_server, "repo", "list", "--json")).stdout)]
    assert "cli-files" not in names


def test_robot_with_token_and_grant_pushes_and_pulls(live_server, tmp_path: Path) -> None:
    ok(admin(live_server, "repo", "create", "builds", "--format", "generic"))
    ok(admin(live_server, "admin", "user", "create", "ci-bot", "--kind", "robot"))
    minted = ok(admin(live_server, "admin", "token", "create", "ci-bot", "--name", "ci"))
    secret = minted.stdout.strip()
    assert secret.startswith("arb_") and "\n" not in secret
    assert "save it now" in minted.stderr
    bot = live_server.client_env(secret)

    assert "ci-bot (robot)" in ok(arbiter(bot, "whoami")).stdout
    artifact = random_file(tmp_path / "tool.bin", FIVE_MIB)
    refused = failed(arbiter(bot, "push", str(artifact), "builds/tool/1.0.0"))
    assert "403" in refused or "closed the connection" in refused

    ok(admin(live_server, "admin", "grant", "writer", "--user", "ci-bot", "--repo", "builds"))
    assert "writer:builds" in ok(arbiter(bot, "whoami")).stdout
    pushed = ok(arbiter(bot, "push", str(artifact), "builds/tool/1.0.0"))
    assert sha256_of(artifact) in pushed.stdout

    before = pathsend_count(live_server)
    out = tmp_path / "pulled"
    out.mkdir()
    ok(arbiter(bot, "pull", "builds/tool/1.0.0/tool.bin", "-o", str(out)))
    assert sha256_of(out / "tool.bin") == sha256_of(artifact)
    assert (out / "tool.bin").stat().st_size == FIVE_MIB
    assert sorted(p.name for p in out.iterdir()) == ["tool.bin"], "temp file left behind"
    assert pathsend_count(live_server) == before + 1, "the download did not use ASGI pathsend"


def test_pull_with_wrong_token_fails_clearly(live_server, tmp_path: Path) -> None:
    ok(admin(live_server, "repo", "create", "secured", "--format", "generic"))
    artifact = random_file(tmp_path / "a.bin", 1000)
    ok(admin(live_server, "push", str(artifact), "secured/pkg/1"))

    wrong = live_server.client_env("arb_not_a_real_token")
    target = tmp_path / "out.bin"
    message = failed(arbiter(wrong, "pull", "secured/pkg/1/a.bin", "-o", str(target)))
    assert "invalid credentials" in message
    assert "ARBITER_TOKEN" in message
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_pull_refuses_content_that_does_not_match_the_stated_digest(
    live_server, tmp_path: Path
) -> None:
    ok(admin(live_server, "repo", "create", "rotting", "--format", "generic"))
    artifact = random_file(tmp_path / "b.bin", 300_000)
    ok(admin(live_server, "push", str(artifact), "rotting/pkg/1"))
    stored = _stored_blob(live_server.data, sha256_of(artifact))
    damaged = bytearray(stored.read_bytes())
    damaged[1000] ^= 0xFF
    stored.chmod(0o644)
    stored.write_bytes(bytes(damaged))

    out = tmp_path / "out"
    out.mkdir()
    message = failed(admin(live_server, "pull", "rotting/pkg/1/b.bin", "-o", str(out / "b.bin")))
    assert "checksum mismatch" in message
    assert list(out.iterdir()) == [], "a damaged download or its temp file was left behind"


def _stored_blob(data: Path, sha256: str) -> Path:
    matches = [p for p in data.rglob(f"*{sha256}*") if p.is_file()]
    assert len(matches) == 1, matches
    return matches[0]


def test_team_grant_reaches_its_members(live_server) -> None:
    ok(admin(live_server, "repo", "create", "shared", "--format", "generic"))
    ok(admin(live_server, "admin", "user", "create", "dana"))
    ok(admin(live_server, "admin", "team", "create", "platform"))
    ok(admin(live_server, "admin", "team", "add", "platform", "dana"))
    granted = ok(
        admin(live_server, "admin", "grant", "reader", "--team", "platform", "--repo", "shared")
    )
    assert "granted reader to team platform in shared" in granted.stdout
    secret = ok(admin(live_server, "admin", "token", "create", "dana")).stdout.strip()

    me = ok(arbiter(live_server.client_env(secret), "whoami")).stdout
    assert "reader:shared" in me
    assert "platform" in me


def test_grant_needs_exactly_one_holder(live_server) -> None:
    result = admin(live_server, "admin", "grant", "reader")
    assert result.exit_code == 2
    assert "exactly one of --user or --team" in result.stderr


def test_connection_refused_says_how_to_start_the_server() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"ARBITER_URL": f"http://127.0.0.1:{port}", "ARBITER_TOKEN": ""}
    message = failed(arbiter(env, "repo", "list"))
    assert "cannot connect" in message
    assert "is the server running? start it with 'make run' or 'arbiter serve'" in message


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("arbiter")
    assert script.exists(), "pip install -e . should install the 'arbiter' console script"
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    for command in ("serve", "push", "pull", "admin", "repo", "whoami"):
        assert command in result.stdout
