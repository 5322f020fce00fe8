"""With a deny-all policy, every route that touches an artifact is refused and audited.

This is the proof that the governance layer is the only road: no adapter
reaches storage, metadata or the audit log around it.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from tests.fixtures_app import POLICY_FIXTURES, make_registry_app


def _state(app) -> tuple[list[tuple], list[str], int, int]:  # type: ignore[no-untyped-def]
    with app.services.db.reader() as session:
        conn = session.connection()
        files = conn.execute(text("SELECT filename, blob_digest FROM files ORDER BY id")).all()
        versions = conn.execute(text("SELECT downloads FROM versions")).scalars().all()
        denied = conn.execute(
            text("SELECT count(*) FROM audit_events WHERE outcome='denied'")
        ).scalar_one()
        total = conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
    root = app.settings.blob_root
    blobs = sorted(f for _d, _s, fs in os.walk(root / "sha256") for f in fs)
    return [tuple(f) for f in files] + [("downloads", tuple(versions))], blobs, denied, total


def test_deny_all_policy_refuses_and_audits_every_artifact_route(
    tmp_path: Path, database_url: str
) -> None:
    setup = make_registry_app(tmp_path, database_url)
    with setup.client:
        setup.create_repo("files")
        for name in ("a.bin", "b.bin"):
            put = setup.client.put(
                f"/generic/files/pkg/1/{name}", content=name.encode(), headers=setup.headers()
            )
            assert put.status_code == 201

    denied_app = make_registry_app(tmp_path, database_url, policy_dir=POLICY_FIXTURES / "deny_all")
    requests = [
        ("PUT", "/generic/files/pkg/1/c.bin", b"new"),
        ("PUT", "/generic/files/pkg/2/a.bin", b"new"),
        ("GET", "/generic/files/pkg/1/a.bin", None),
        ("HEAD", "/generic/files/pkg/1/a.bin", None),
        ("GET", "/generic/files/pkg", None),
        ("GET", "/generic/files/pkg/1/", None),
        ("DELETE", "/generic/files/pkg/1/a.bin", None),
        ("DELETE", "/generic/files/pkg/1", None),
    ]
    with denied_app.client:
        before = _state(denied_app)
        for method, url, body in requests:
            response = denied_app.client.request(
                method, url, content=body, headers=denied_app.headers()
            )
            assert response.status_code == 403, (method, url, response.status_code, response.text)
            if method != "HEAD":
                assert response.json()["error"]["reasons"], response.text
        after = _state(denied_app)

    assert after[0] == before[0], "artifact rows or counters changed under deny-all"
    assert after[1] == before[1], "blobs changed under deny-all"
    assert after[2] - before[2] == len(requests), "one denied event per request"
    assert after[3] - before[3] == len(requests), "no other events were written"
