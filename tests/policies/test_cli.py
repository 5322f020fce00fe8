"""``arbiter policy``: test, eval, diff and reload from the command line."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from policies import EmbeddedEngine, default_policy_dir, load_bundle
from policies.inputs import Artifact
from registry.cli.policy import app
from tests.policies.conftest import DENY_ALL, make_input


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def test_eval_prints_decision_and_reasons(tmp_path: Path) -> None:
    doc = tmp_path / "input.json"
    doc.write_text(json.dumps(make_input("pull")))
    allowed = run("eval", "--action", "pull", "--input", str(doc))
    assert allowed.exit_code == 0, allowed.output
    assert "allow pull" in allowed.output
    denied = run("eval", "--action", "delete", "--input", str(doc))
    assert denied.exit_code == 2
    assert "subject alice holds no role that grants delete on repository libs" in denied.output


def test_eval_with_a_broken_policy_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "x.rego").write_text("package registry\n\ndecision := {\n")
    doc = tmp_path / "input.json"
    doc.write_text("{}")
    result = run("eval", "--action", "pull", "--input", str(doc), "--policy-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "x.rego:3" in result.output


def test_test_runs_the_rego_tests(opa_binary: str) -> None:
    result = run("test", "--policy-dir", str(default_policy_dir()))
    assert result.exit_code == 0


def test_diff_reports_changed_decisions(tmp_path: Path) -> None:
    engine = EmbeddedEngine.from_bundle(load_bundle(default_policy_dir()), use_opa=False)
    docs = [
        make_input("pull"),
        make_input("push", roles=("writer:libs",), artifact=Artifact(licenses=["MIT"])),
    ]
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(
            json.dumps({"decision": engine.decide(doc).to_json(), "details": {"input": doc}})
            for doc in docs
        )
    )
    engine.close()
    result = run("diff", "--candidate", str(DENY_ALL), "--events", str(events), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["changed"] == 2
    assert report["by_action"]["push"]["newly_denied"] == 1
    assert run("diff", "--candidate", str(DENY_ALL)).exit_code == 1


class ReloadHandler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def do_POST(self) -> None:
        ReloadHandler.seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps({"revision": "sha256:abc"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def registry_stub() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), ReloadHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_reload_posts_with_the_bearer_token(registry_stub: str) -> None:
    result = run("reload", env={"ARBITER_URL": registry_stub, "ARBITER_TOKEN": "s3cret"})
    assert result.exit_code == 0, result.output
    assert "sha256:abc" in result.output
    assert ReloadHandler.seen[-1] == ("/api/v1/policy/reload", "Bearer s3cret")


def test_reload_against_nothing_says_so() -> None:
    result = run("reload", env={"ARBITER_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 1
    assert "cannot reach" in result.output
