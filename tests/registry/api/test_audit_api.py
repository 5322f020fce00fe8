"""The audit log over the API and the CLI: keys, checkpoints, proofs, export, lineage."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit import InclusionProof, verify_export
from registry.cli.main import app as cli
from tests.fixtures_app import RegistryApp, make_registry_app


def _populate(app: RegistryApp) -> None:
    app.create_repo("files")
    url = "/generic/files/tool/1.0/tool.bin"
    headers = {**app.headers(), "X-Arbiter-Commit": "abc123", "X-Arbiter-Pipeline": "ci-42"}
    assert app.client.put(url, content=b"tool", headers=headers).status_code == 201
    for _ in range(3):
        assert app.client.get(url, headers=app.headers()).status_code == 200
    assert app.client.get(url).status_code == 401  # an anonymous attempt, denied


def test_checkpoint_proof_and_offline_export(registry_app: RegistryApp, tmp_path: Path) -> None:
    app = registry_app
    _populate(app)
    key = app.client.get("/api/v1/audit/public-key").text.strip()
    made = app.client.post("/api/v1/audit/checkpoints", headers=app.headers())
    assert made.status_code == 201, made.text
    checkpoint = made.json()
    note = app.client.get("/api/v1/audit/checkpoints/latest").text
    assert note == checkpoint["note"]

    proof = app.client.get(
        "/api/v1/audit/proofs/inclusion", params={"seq": 2}, headers=app.headers()
    )
    assert proof.status_code == 200, proof.text
    InclusionProof.from_json(proof.json()).verify(checkpoint["root_hash"])
    beyond = app.client.get(
        "/api/v1/audit/proofs/inclusion", params={"seq": 10_000}, headers=app.headers()
    )
    assert beyond.status_code == 404

    export = app.client.get("/api/v1/audit/export", headers=app.headers())
    assert export.status_code == 200
    path = tmp_path / "export.jsonl"
    path.write_bytes(export.content)
    report = verify_export(path, key)
    assert report.count == checkpoint["tree_size"]

    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text(path.read_text().replace('"pull"', '"push"', 1))
    with pytest.raises(Exception, match=r"."):
        verify_export(tampered, key)


def test_filtered_events_as_json_and_csv(registry_app: RegistryApp) -> None:
    app = registry_app
    _populate(app)
    denied = app.client.get(
        "/api/v1/audit/events", params={"outcome": "denied"}, headers=app.headers()
    )
    assert denied.status_code == 200
    events = json.loads(denied.text)
    assert [e["actor"]["id"] for e in events] == ["anonymous"]
    pulls = app.client.get(
        "/api/v1/audit/events",
        params={"action": "pull", "format": "csv"},
        headers=app.headers(),
    )
    rows = list(csv.DictReader(io.StringIO(pulls.text)))
    assert len(rows) == 4
    assert all(r["action"] == "pull" for r in rows)
    assert app.client.get("/api/v1/audit/events").status_code == 401


def test_lineage_as_json_mermaid_and_dot(registry_app: RegistryApp) -> None:
    app = registry_app
    _populate(app)
    found = app.client.get("/api/v1/lineage/files/tool/1.0", headers=app.headers())
    assert found.status_code == 200, found.text
    lineage = found.json()
    assert lineage["pulls"]["count"] == 3
    assert lineage["provenance"].get("commit") == "abc123", lineage
    kinds = [step["kind"] for step in lineage["steps"]]
    assert kinds and kinds[0].startswith("push"), kinds
    mermaid = app.client.get(
        "/api/v1/lineage/files/tool/1.0", params={"format": "mermaid"}, headers=app.headers()
    )
    assert mermaid.text.startswith(("flowchart", "graph"))
    dot = app.client.get(
        "/api/v1/lineage/files/tool/1.0", params={"format": "dot"}, headers=app.headers()
    )
    assert "digraph" in dot.text
    missing = app.client.get("/api/v1/lineage/files/tool/9.9", headers=app.headers())
    assert missing.status_code == 404


def test_cli_verify_export_and_tamper_detection(tmp_path: Path) -> None:
    db = tmp_path / "data" / "arbiter.db"
    app = make_registry_app(tmp_path, f"sqlite:///{db}")
    with app.client:
        _populate(app)
        key = app.client.get("/api/v1/audit/public-key").text.strip()
    app.services.close()
    runner = CliRunner()
    data = str(tmp_path / "data")

    verified = runner.invoke(cli, ["audit", "verify", "--data", data])
    assert verified.exit_code == 0, verified.output
    assert "verified" in verified.output

    out = tmp_path / "export.jsonl"
    exported = runner.invoke(cli, ["audit", "export", "--out", str(out), "--data", data])
    assert exported.exit_code == 0, exported.output
    (tmp_path / "key.txt").write_text(key)
    checked = runner.invoke(
        cli, ["audit", "verify-export", str(out), "--public-key", f"@{tmp_path / 'key.txt'}"]
    )
    assert checked.exit_code == 0, checked.output

    raw = sqlite3.connect(db)
    raw.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    names = [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='trigger'")]
    for name in names:
        raw.execute(f"DROP TRIGGER {name}")
    raw.execute("UPDATE audit_events SET outcome = 'allowed' WHERE outcome = 'denied'")
    raw.commit()
    raw.close()
    broken = runner.invoke(cli, ["audit", "verify", "--data", data])
    assert broken.exit_code != 0
    assert "NOT verified" in broken.output
    assert "seq" in broken.output, broken.output
