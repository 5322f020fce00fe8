"""Retention end to end through the API, on SQLite and PostgreSQL: rules, preview, governed
runs with vetoes, reports, lineage, restore, purge, garbage collection, audit chain."""

from __future__ import annotations

import hashlib
from typing import Any

from audit import verify_log
from tests.registry.retention.conftest import RetentionApp

RULES: dict[str, Any] = {
    "rules": [
        {"name": "newest", "kind": "protect", "keep_last": 1},
        {"name": "old", "older_than_days": 10},
    ],
    "recovery_days": 14,
}


def _seed(app: RetentionApp) -> dict[str, bytes]:
    app.create_repo("files")
    bodies = {}
    for i in range(5):
        bodies[f"tool/1.{i}.0"] = f"tool {i}".encode() * 100
        app.push("files", "tool", f"1.{i}.0", bodies[f"tool/1.{i}.0"])
    for version in ("2.0.0", "2.1.0", "3.0.0"):
        bodies[f"lib/{version}"] = f"lib {version}".encode() * 100
        app.push("files", "lib", version, bodies[f"lib/{version}"])
    app.label("files", "lib", "2.0.0", "legal-hold", "case-42")
    app.pull("files", "lib", "2.1.0")
    return bodies


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _lineage(app: RetentionApp, ref: str) -> dict[str, Any]:
    response = app.client.get(f"/api/v1/lineage/files/{ref}", headers=app.headers())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_retention_run_end_to_end(retention_app: RetentionApp) -> None:
    app = retention_app
    bodies = _seed(app)
    stored = app.set_rules(RULES)
    assert stored["version"] == 1

    preview = app.client.get("/api/v1/retention/preview", headers=app.headers()).json()
    assert preview["would_delete"] == 0, "nothing is ten days old yet"

    app.clock.advance(days=20)
    preview = app.client.get(
        "/api/v1/retention/preview", params={"repository": "files"}, headers=app.headers()
    ).json()
    listed = {f"{d['package']}/{d['version']}": d for d in preview["deletions"]}
    assert sorted(listed) == ["lib/2.0.0", "lib/2.1.0"] + [f"tool/1.{i}.0" for i in range(4)]
    assert {d["rule"] for d in listed.values()} == {"old"}
    assert preview["bytes_reclaimed"] == sum(len(bodies[ref]) for ref in listed)

    run = app.run()
    report = run["report"]
    assert run["status"] == "finished"
    assert sorted(f"{e['package']}/{e['version']}" for e in report["deleted"]) == [
        f"tool/1.{i}.0" for i in range(4)
    ]
    vetoes = {f"{e['package']}/{e['version']}": e for e in report["vetoed"]}
    assert sorted(vetoes) == ["lib/2.0.0", "lib/2.1.0"]
    assert "legal hold" in vetoes["lib/2.0.0"]["policy_reasons"][0]
    assert "pulled within the last 30 days" in vetoes["lib/2.1.0"]["policy_reasons"][0]
    kept = {f"{e['package']}/{e['version']}": e["rule"] for e in report["kept"]}
    assert kept == {"tool/1.4.0": "newest", "lib/3.0.0": "newest"}
    assert report["summary"]["bytes_deleted"] == sum(len(bodies[f"tool/1.{i}.0"]) for i in range(4))
    assert app.versions("files", "tool") == ["1.4.0"]
    assert (
        app.client.get(f"/api/v1/retention/runs/{run['id']}", headers=app.headers()).json()[
            "report"
        ]
        == report
    )

    deleted = _lineage(app, "tool/1.0.0")
    step = [s for s in deleted["steps"] if s["kind"] == "retained"][-1]
    assert step["facts"]["rule"] == "old" and step["facts"]["verdict"] == "delete"
    assert step["facts"]["policy_revision"] == app.services.policy.revision
    assert deleted["status"] == "deleted"
    vetoed = _lineage(app, "lib/2.0.0")
    veto = [s for s in vetoed["steps"] if s["kind"] == "vetoed"][-1]
    assert veto["facts"]["rule"] == "old" and "legal hold" in veto["facts"]["reasons"][0]

    restored = app.client.post(
        "/api/v1/retention/restore",
        json={"repository": "files", "package": "tool", "version": "1.0.0"},
        headers=app.headers(),
    )
    assert restored.status_code == 200, restored.text
    assert app.pull("files", "tool", "1.0.0") == bodies["tool/1.0.0"]
    assert _lineage(app, "tool/1.0.0")["status"] == "active"
    trash = app.client.get("/api/v1/retention/trash", headers=app.headers()).json()
    assert sorted(t["version"] for t in trash) == ["1.1.0", "1.2.0", "1.3.0"]

    # the recovery period passes: the next run purges the trash, deletes 1.0.0 again and
    # lib 2.1.0, whose last pull is now 35 days old; the legal hold still keeps lib 2.0.0
    app.clock.advance(days=15)
    second = app.run(repository="files")["report"]
    assert sorted(e["version"] for e in second["purged"]) == ["1.1.0", "1.2.0", "1.3.0"]
    assert [e["version"] for e in second["deleted"]] == ["1.0.0", "2.1.0"]
    assert [e["version"] for e in second["vetoed"]] == ["2.0.0"]
    assert _lineage(app, "tool/1.1.0")["steps"][-1]["facts"]["verdict"] == "purge"

    gc = app.client.post("/api/v1/gc", params={"grace_minutes": 0}, headers=app.headers())
    assert gc.status_code == 200, gc.text
    collected = gc.json()
    # the purged versions' bytes (and whatever else they referenced) are reclaimed
    purged = {_digest(bodies[f"tool/1.{i}.0"]) for i in (1, 2, 3)}
    assert purged <= set(collected["digests"])
    assert collected["bytes_reclaimed"] >= sum(len(bodies[f"tool/1.{i}.0"]) for i in (1, 2, 3))
    held = ["tool/1.0.0", "tool/1.4.0", "lib/2.0.0", "lib/2.1.0", "lib/3.0.0"]  # live or trash
    assert not {_digest(bodies[ref]) for ref in held} & set(collected["digests"])
    assert collected["usage"]["files"]["bytes"] >= sum(len(bodies[ref]) for ref in held)
    for ref in ("tool/1.4.0", "lib/2.0.0", "lib/3.0.0"):
        package, version = ref.split("/")
        assert app.pull("files", package, version) == bodies[ref]

    with app.services.db.reader() as session:
        verify_log(session.connection(), app.services.signer.verifier())


def test_a_rule_set_that_empties_a_repository_needs_confirm(retention_app: RetentionApp) -> None:
    app = retention_app
    app.create_repo("scratch")
    for i in range(3):
        app.push("scratch", "tmp", f"0.{i}", b"x" * (i + 1))
    app.set_rules({"rules": [{"name": "everything", "repositories": ["scratch"]}]})
    preview = app.client.get("/api/v1/retention/preview", headers=app.headers()).json()
    assert preview["deletes_everything"] == ["scratch"]
    refused = app.client.post(
        "/api/v1/retention/runs", params={"wait": True}, headers=app.headers()
    )
    assert refused.status_code == 409
    assert "--confirm" in refused.json()["error"]["message"]
    assert app.versions("scratch", "tmp") == ["0.0", "0.1", "0.2"]
    confirmed = app.run(confirm=True)
    assert confirmed["confirmed"] is True and confirmed["deleted"] == 3
    assert app.versions("scratch", "tmp") == []


def test_bad_rules_are_refused_with_the_field_named(retention_app: RetentionApp) -> None:
    app = retention_app
    cases = [
        ({"rules": [{"name": "x", "include": "(unclosed"}]}, "rules.0.include"),
        ({"rules": [{"name": "x", "keep_last": -1}]}, "rules.0.keep_last"),
        ({"schedule": {"cron": "0 25 * * *"}}, "schedule.cron"),
        ({"schedule": {"cron": "0 3 * * *", "timezone": "Nowhere/Land"}}, "schedule.timezone"),
    ]
    for document, field in cases:
        response = app.client.put("/api/v1/retention/rules", json=document, headers=app.headers())
        assert response.status_code == 422, response.text
        assert field in response.json()["error"]["message"], response.text
    rule = app.client.post(
        "/api/v1/retention/rules/rules",
        json={"name": "bad", "tags_include": "*oops"},
        headers=app.headers(),
    )
    assert rule.status_code == 422 and "tags_include" in rule.json()["error"]["message"]
    history = app.client.get("/api/v1/retention/rules/history", headers=app.headers()).json()
    assert history == [], "nothing invalid was stored"


def test_rule_changes_are_versions_and_audited(retention_app: RetentionApp) -> None:
    app = retention_app
    app.set_rules({"rules": [{"name": "old", "older_than_days": 90}]})
    added = app.client.post(
        "/api/v1/retention/rules/rules",
        json={"name": "keep five", "keep_last": 5},
        headers=app.headers(),
    ).json()
    assert added["version"] == 2 and [r["id"] for r in added["rules"]] == ["old", "keep-five"]
    removed = app.client.delete("/api/v1/retention/rules/rules/old", headers=app.headers()).json()
    assert removed["version"] == 3 and [r["id"] for r in removed["rules"]] == ["keep-five"]
    first = app.client.get("/api/v1/retention/rules/versions/1", headers=app.headers()).json()
    assert [r["id"] for r in first["rules"]] == ["old"]
    events = app.scalar("SELECT count(*) FROM audit_events WHERE action = 'retention.rules.update'")
    assert events == 3


def test_a_recent_pull_by_a_production_team_vetoes_retention(retention_app: RetentionApp) -> None:
    """The audit log tells which teams pulled a version; the policy keeps production's."""
    app = retention_app
    app.create_repo("files")
    for version in ("1.0", "2.0", "3.0"):
        app.push("files", "svc", version, f"svc {version}".encode())
    api, headers = app.client, app.headers()
    assert api.post("/api/v1/users", json={"name": "deployer"}, headers=headers).is_success
    assert api.post("/api/v1/teams", json={"name": "production"}, headers=headers).is_success
    member = api.post(
        "/api/v1/teams/production/members", json={"user": "deployer"}, headers=headers
    )
    assert member.is_success, member.text
    binding = {"role": "reader", "repository": "files", "user": "deployer"}
    assert api.post("/api/v1/role-bindings", json=binding, headers=headers).is_success
    token = api.post("/api/v1/users/deployer/tokens", json={}, headers=headers).json()["token"]
    pulled = api.get("/generic/files/svc/1.0/f.bin", headers={"Authorization": f"Bearer {token}"})
    assert pulled.status_code == 200, pulled.text

    # 45 days on: past the 30-day rule for everyone, inside production's 90 days
    app.clock.advance(days=45)
    app.set_rules({"rules": [{"name": "old", "older_than_days": 30, "keep_last": 1}]})
    report = app.run()["report"]
    assert [e["version"] for e in report["deleted"]] == ["2.0"]
    (veto,) = report["vetoed"]
    assert veto["version"] == "1.0"
    assert veto["policy_reasons"] == [
        "production team production pulled the artifact within the last 90 days; retention keeps it"
    ]
