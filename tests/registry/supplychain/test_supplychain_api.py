"""End to end through the application: push analysis, policy decisions, SBOM and findings APIs.

Each test runs the whole app (migrations, blob store, embedded Rego, audit
log) over SQLite; the OSV records are real (read from ../shared/osv).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

from registry.auth import Subject
from registry.supplychain.rescan import Rescanner
from registry.supplychain.sbom import validate
from registry.supplychain.vulndb.importer import import_path
from tests.fixtures_app import RegistryApp
from tests.registry.supplychain.builders import rootfs, tar, wheel

WHEEL = "/generic/files/demo/1.0/demo-1.0-py3-none-any.whl"


def _events(app: RegistryApp, action: str) -> list[dict[str, Any]]:
    found = app.client.get("/api/v1/audit/events", params={"action": action}, headers=app.headers())
    assert found.status_code == 200, found.text
    return found.json()  # type: ignore[no-any-return]


def _import(app: RegistryApp, records: Path) -> None:
    import_path(app.services.governor, records, subject=Subject(id="t", kind="robot"))


def test_a_wheel_with_a_denied_license_is_refused_at_push(app: RegistryApp) -> None:
    refused = app.client.put(WHEEL, content=wheel(license="GPL-3.0-only"), headers=app.headers())
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["reasons"] == ["license GPL-3.0-only is on the deny list"]
    content = [e for e in _events(app, "push") if e["details"].get("stage") == "content"]
    artifact = content[-1]["details"]["input"]["artifact"]
    assert artifact["sbom"]["licenses"] == ["GPL-3.0-only"]
    assert artifact["scan"] == {"status": "complete", "reason": None, "components": 1}
    assert _events(app, "analyse") == [], "nothing is recorded for refused content"
    assert app.client.get(WHEEL, headers=app.headers()).status_code == 404


def test_a_pull_of_a_version_with_a_critical_finding_is_denied(
    registry_app: RegistryApp, osv_records: Path
) -> None:
    app = registry_app  # SQLite and PostgreSQL
    app.create_repo("files")
    _import(app, osv_records)
    pushed = app.client.put(
        WHEEL, content=wheel(requires=("langchain==0.0.200",)), headers=app.headers()
    )
    assert pushed.status_code == 201, pushed.text
    content = [e for e in _events(app, "push") if e["details"].get("stage") == "content"][-1]
    vulnerabilities = content["details"]["input"]["artifact"]["vulnerabilities"]
    assert vulnerabilities["critical"] == 1 and "PYSEC-2023-138" in vulnerabilities["ids"]
    assert "CVE-2023-36095" in vulnerabilities["ids"]  # aliases count as ids
    assert vulnerabilities["fixable"] == ["PYSEC-2023-138"]

    pulled = app.client.get(WHEEL, headers=app.headers())
    assert pulled.status_code == 403, pulled.text
    reason = pulled.json()["error"]["reasons"][0]
    assert "1 vulnerability finding(s) at or above severity critical" in reason
    pull = [e for e in _events(app, "pull") if e["outcome"] == "denied"][-1]
    assert pull["details"]["input"]["artifact"]["scan"]["status"] == "complete"

    findings = app.client.get("/api/v1/findings/files/demo/1.0", headers=app.headers()).json()
    assert findings["counts"]["critical"] == 1
    (finding,) = [f for f in findings["findings"] if f["id"] == "PYSEC-2023-138"]
    assert finding["purl"] == "pkg:pypi/langchain@0.0.200"
    assert finding["fixed"] == ["0.0.236"] and finding["score"] == 9.8


def test_sbom_is_served_as_json_and_xml_and_linked_in_lineage(app: RegistryApp) -> None:
    assert app.client.put(WHEEL, content=wheel(), headers=app.headers()).status_code == 201
    other = "/generic/files/demo/1.0/demo-1.0.tar.gz"
    layer = rootfs("debian")
    assert app.client.put(other, content=layer, headers=app.headers()).status_code == 201

    merged = app.client.get("/api/v1/sbom/files/demo/1.0", headers=app.headers())
    assert merged.status_code == 200
    assert merged.headers["content-type"] == "application/vnd.cyclonedx+json"
    document = merged.json()
    validate.validate_json(document)
    refs = {c["bom-ref"] for c in document["components"]}
    assert "pkg:pypi/demo@1.0" in refs and "pkg:pypi/jinja2@2.10" in refs

    one = app.client.get(
        "/api/v1/sbom/files/demo/1.0",
        params={"file": "demo-1.0-py3-none-any.whl"},
        headers=app.headers(),
    ).json()
    assert one["metadata"]["component"]["purl"] == "pkg:pypi/demo@1.0"

    xml = app.client.get(
        "/api/v1/sbom/files/demo/1.0",
        headers={**app.headers(), "Accept": "application/vnd.cyclonedx+xml"},
    )
    assert xml.status_code == 200 and xml.headers["content-type"] == "application/vnd.cyclonedx+xml"
    assert validate.validate_xml(xml.content) == "1.6"

    analysed = _events(app, "analyse")
    assert len(analysed) == 2
    assert analysed[0]["details"]["sbom"]["digest"].startswith("sha256:")
    lineage = app.client.get("/api/v1/lineage/files/demo/1.0", headers=app.headers()).json()
    kinds = [step["kind"] for step in lineage["steps"]]
    assert kinds[0].startswith("push") and "analysed" in kinds


def test_reading_sboms_is_decided_by_the_policy(app: RegistryApp) -> None:
    assert app.client.put(WHEEL, content=wheel(), headers=app.headers()).status_code == 201
    anonymous = app.client.get("/api/v1/sbom/files/demo/1.0")
    assert anonymous.status_code in (401, 403)
    assert app.client.get("/api/v1/findings/files/demo/1.0").status_code in (401, 403)
    missing = app.client.get("/api/v1/sbom/files/demo/9.9", headers=app.headers())
    assert missing.status_code == 404
    assert app.client.get("/api/v1/sbom/files/demo/1.0", headers=app.headers()).status_code == 200
    reads = [
        (e["outcome"], e["actor"]["kind"], e["details"]["reads"])
        for e in _events(app, "pull")
        if e["details"].get("reads")
    ]  # every read is evidence, refused ones too
    assert reads == [
        ("denied", "anonymous", "sbom"),
        ("denied", "anonymous", "findings"),
        ("allowed", "user", "sbom"),
        ("allowed", "user", "sbom"),
    ]


def test_producer_sbom_is_validated_and_kept_beside_ours(
    app: RegistryApp, osv_records: Path
) -> None:
    _import(app, osv_records)
    assert app.client.put(WHEEL, content=wheel(), headers=app.headers()).status_code == 201
    url = "/api/v1/sbom/files/demo/1.0"
    json_headers = {**app.headers(), "Content-Type": "application/vnd.cyclonedx+json"}

    malformed = app.client.put(
        url,
        content=json.dumps(
            {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"name": "x"}]}
        ),
        headers=json_headers,
    )
    assert malformed.status_code == 422, malformed.text
    assert "'type' is a required property" in malformed.json()["error"]["message"]
    assert app.client.put(url, content=b"{oops", headers=json_headers).status_code == 422

    producer = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "components": [
            {
                "type": "library",
                "name": "lodash",
                "version": "4.17.15",
                "purl": "pkg:npm/lodash@4.17.15",
            }
        ],
    }
    kept = app.client.put(url, content=json.dumps(producer), headers=json_headers)
    assert kept.status_code == 201, kept.text
    assert kept.json()["new_findings"] == ["GHSA-35jh-r3h4-6jhm"]
    served = app.client.get(url, params={"source": "producer"}, headers=app.headers())
    assert served.json() == producer
    ours = app.client.get(url, headers=app.headers()).json()
    assert ours["metadata"]["component"]["purl"] == "pkg:pypi/demo@1.0"
    findings = app.client.get("/api/v1/findings/files/demo/1.0", headers=app.headers()).json()
    assert findings["counts"]["high"] == 1

    gpl = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "components": [
            {"type": "library", "name": "x", "licenses": [{"license": {"id": "AGPL-3.0-only"}}]}
        ],
    }
    refused = app.client.put(url, content=json.dumps(gpl), headers=json_headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["reasons"] == ["license AGPL-3.0-only is on the deny list"]
    unknown = app.client.put(
        "/api/v1/sbom/files/demo/7.0", content=json.dumps(producer), headers=json_headers
    )
    assert unknown.status_code == 404


def test_a_hostile_archive_is_a_failed_scan_not_a_crash(app: RegistryApp) -> None:
    url = "/generic/files/evil/1.0/evil.tar.gz"
    data = tar({"ok.txt": b"x"}, links={"escape": (tarfile.SYMTYPE, "../../etc/passwd")})
    pushed = app.client.put(url, content=data, headers=app.headers())
    assert pushed.status_code == 201, pushed.text  # the starter policy does not block failed scans
    content = [e for e in _events(app, "push") if e["details"].get("stage") == "content"][-1]
    scan = content["details"]["input"]["artifact"]["scan"]
    assert scan["status"] == "failed" and "outside the archive" in scan["reason"]
    findings = app.client.get("/api/v1/findings/files/evil/1.0", headers=app.headers()).json()
    assert findings["scan"]["status"] == "failed"
    pull = app.client.get(url, headers=app.headers())
    assert pull.status_code == 200
    last_pull = _events(app, "pull")[-1]
    assert last_pull["details"]["input"]["artifact"]["scan"]["status"] == "failed"
    sbom = app.client.get("/api/v1/sbom/files/evil/1.0", headers=app.headers())
    assert sbom.status_code == 404 and "analysis of evil.tar.gz failed" in sbom.text


def test_rescan_after_new_vulnerability_data_blocks_the_next_pull(
    registry_app: RegistryApp, osv_records: Path
) -> None:
    app = registry_app  # SQLite and PostgreSQL
    app.create_repo("files")
    assert (
        app.client.put(
            WHEEL, content=wheel(requires=("langchain==0.0.200",)), headers=app.headers()
        ).status_code
        == 201
    )
    assert app.client.get(WHEEL, headers=app.headers()).status_code == 200  # nothing known yet
    rescanner = Rescanner(app.services.db, app.services.governor)
    assert rescanner.run_once().versions == 0  # no vulnerability data: nothing to do

    _import(app, osv_records)
    report = rescanner.run_once()
    assert (report.versions, report.changed) == (1, 1)
    assert "PYSEC-2023-138" in report.new
    event = _events(app, "analyse")[-1]
    assert event["details"]["trigger"] == "rescan"
    assert "PYSEC-2023-138" in event["details"]["new"]
    assert event["actor"]["id"] == "supplychain-rescanner"

    assert app.client.get(WHEEL, headers=app.headers()).status_code == 403
    assert rescanner.run_once().versions == 0  # up to date now
