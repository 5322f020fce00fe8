"""Vulnerability data: OSV import (idempotent), matching by purl per ecosystem, CVSS severity."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from registry.auth import Subject
from registry.cli.main import app as cli
from registry.config import Settings
from registry.services import build_services
from registry.supplychain.vulndb import records, severity, versions
from registry.supplychain.vulndb.ecosystems import keys
from registry.supplychain.vulndb.importer import import_path
from registry.supplychain.vulndb.index import AdvisoryIndex
from registry.supplychain.vulndb.matcher import match
from registry.supplychain.vulndb.ranges import parse_range
from tests.registry.supplychain.conftest import osv_path

ACTOR = Subject(id="test", kind="robot")


def _index(directory: Path) -> AdvisoryIndex:
    return AdvisoryIndex.from_advisories(
        records.parse(json.loads(path.read_bytes())) for path in sorted(directory.glob("*.json"))
    )


@pytest.mark.parametrize(
    ("purl", "advisory", "label"),
    [
        ("pkg:pypi/langchain@0.0.200", "PYSEC-2023-138", "critical"),
        ("pkg:pypi/Jinja2@2.10", "PYSEC-2019-217", None),
        ("pkg:pypi/jinja2@2.10.0", "PYSEC-2021-66", None),  # PEP 440: 2.10.0 == 2.10
        ("pkg:npm/lodash@4.17.15", "GHSA-35jh-r3h4-6jhm", "high"),
        ("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", "GHSA-jfh8-c2jp-5v3q", "critical"),
        ("pkg:golang/golang.org/x/net@v0.0.0-20220801000000-abcdefabcdef", "GO-2022-0969", None),
        ("pkg:golang/stdlib@v1.18.5", "GO-2022-0969", None),
    ],
)
def test_known_vulnerable_packages_match(
    osv_records: Path, purl: str, advisory: str, label: str | None
) -> None:
    found = {m.advisory_id: m for m in match(_index(osv_records), [purl])}
    assert advisory in found, found
    if label is not None:
        assert found[advisory].severity == label
    assert found[advisory].fixed, "a fixed version is known"


@pytest.mark.parametrize(
    "purl",
    [
        "pkg:pypi/langchain@0.0.236",  # the fixed version
        "pkg:pypi/jinja2@2.11.3",
        "pkg:npm/lodash@4.17.21",
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.15.0",
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.17.1",
        "pkg:golang/golang.org/x/net@v0.1.0",
        "pkg:golang/stdlib@v1.19.1",
        "pkg:pypi/langchain",  # a declared range is not a version
    ],
)
def test_fixed_versions_do_not_match(osv_records: Path, purl: str) -> None:
    index = _index(osv_records)
    hits = [m.advisory_id for m in match(index, [purl])]
    assert hits == []


def test_version_orders_per_ecosystem() -> None:
    assert versions.parse("PyPI", "1.0rc1") < versions.parse("PyPI", "1.0")
    assert versions.parse("npm", "1.0.0-beta.2") < versions.parse("npm", "1.0.0")
    assert versions.parse("Maven", "1.0-SNAPSHOT") < versions.parse("Maven", "1.0")
    assert versions.parse("Maven", "2.9.10") < versions.parse("Maven", "2.10")
    assert versions.parse("Debian", "1:1.0-1") > versions.parse("Debian", "9.9-1")
    assert versions.parse("Debian", "2.36-9+deb12u4") > versions.parse("Debian", "2.36-9")
    assert versions.parse("Alpine", "1.36.1-r5") > versions.parse("Alpine", "1.36.1-r2")
    assert versions.parse("PyPI", "not a version!") is None


def test_last_affected_and_multiple_introductions() -> None:
    limited = parse_range(
        "PyPI",
        {"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"last_affected": "1.4"}]},
    )
    assert limited is not None
    assert limited.contains(versions.parse("PyPI", "1.4"))
    assert not limited.contains(versions.parse("PyPI", "1.4.1"))
    assert not limited.contains(versions.parse("PyPI", "0.9"))
    two = parse_range(
        "npm",
        {
            "type": "SEMVER",
            "events": [
                {"introduced": "2.0.0"},
                {"fixed": "2.1.0"},
                {"introduced": "0"},
                {"fixed": "1.5.0"},
            ],
        },
    )
    assert two is not None
    assert [
        two.contains(versions.parse("SEMVER", v)) for v in ("1.4.9", "1.5.0", "2.0.5", "2.1.0")
    ] == [
        True,
        False,
        True,
        False,
    ]


def test_cvss_scores() -> None:
    v3 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    v4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
    assert severity.base_score("CVSS_V3", v3) == 9.8
    assert severity.base_score("CVSS_V4", v4) == 9.3
    both = severity.of_record(
        {"severity": [{"type": "CVSS_V3", "score": v3}, {"type": "CVSS_V4", "score": v4}]}
    )
    assert (both.label, both.score) == ("critical", 9.3)  # the newest CVSS version wins
    labelled = severity.of_record({"database_specific": {"severity": "MODERATE"}})
    assert (labelled.label, labelled.score) == ("medium", None)
    assert severity.of_record({}).label == "unknown"
    assert severity.base_score("CVSS_V3", "garbage") is None


def test_import_is_idempotent_and_makes_revisions(tmp_path: Path, osv_records: Path) -> None:
    services = build_services(Settings(data=tmp_path / "data"))
    governor, db = services.governor, services.db
    seen: list[tuple[int, int]] = []
    first = import_path(
        governor, osv_records, subject=ACTOR, progress=lambda d, t: seen.append((d, t))
    )
    assert first.added == len(list(osv_records.glob("*.json"))) and first.revision
    assert seen[-1][0] == seen[-1][1] == first.records
    again = import_path(governor, osv_records, subject=ACTOR)
    assert (again.added, again.updated, again.unchanged) == (0, 0, first.records)
    assert again.revision == first.revision
    record = osv_records / "PYSEC-2023-138.json"
    changed = json.loads(record.read_bytes())
    changed["modified"] = "2030-01-01T00:00:00Z"
    record.write_text(json.dumps(changed))
    (osv_records / "junk.json").write_text("{not json")
    third = import_path(governor, osv_records, subject=ACTOR)
    assert (third.updated, third.skipped) == (1, 1)
    assert third.revision != first.revision
    with db.reader() as session:
        index = AdvisoryIndex.load(session.connection(), keys("pkg:pypi/langchain@0.0.200"))
        events = (
            session.connection()
            .exec_driver_sql("SELECT count(*) FROM audit_events WHERE action = 'vulndb.import'")
            .scalar()
        )
    assert [m.advisory_id for m in match(index, ["pkg:pypi/langchain@0.0.200"])] == [
        "PYSEC-2023-138"
    ]
    assert events == 3
    services.close()


def test_cli_imports_a_whole_osv_zip(tmp_path: Path) -> None:
    source = osv_path("npm.zip")
    runner = CliRunner()
    data = tmp_path / "data"
    result = runner.invoke(cli, ["vulndb", "import", str(source), "--data", str(data)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(source) as archive:
        count = len([n for n in archive.namelist() if n.endswith(".json")])
    assert f"{count} records: {count} added" in result.output
    again = runner.invoke(cli, ["vulndb", "import", str(source), "--data", str(data)])
    assert f"0 added, 0 updated, {count} unchanged" in again.output
    missing = runner.invoke(
        cli, ["vulndb", "import", str(tmp_path / "nope.zip"), "--data", str(data)]
    )
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_pep440_keys_order_like_packaging() -> None:
    from packaging.version import Version

    texts = [
        "1.0.dev1",
        "1.0a1.dev2",
        "1.0a1",
        "1.0a2",
        "1.0b1",
        "1.0rc1",
        "1.0",
        "1.0.0",
        "1.0+local.1",
        "1.0+local.a",
        "1.0.post1.dev1",
        "1.0.post1",
        "1.0.1",
        "1.1.dev0",
        "1!0.1",
        "2.0",
        "0.9",
    ]
    ours = sorted(texts, key=lambda t: versions.parse("PyPI", t))
    theirs = sorted(texts, key=Version)
    assert ours == theirs
    assert versions.parse("PyPI", "1.0") == versions.parse("PyPI", "1.0.0")


def test_semver_keys_order_like_the_spec() -> None:
    spec = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "v1.10.0",
    ]
    assert sorted(spec, key=lambda t: versions.parse("npm", t)) == spec
    assert versions.parse("Go", "0.0.0-20220906165146-f3363e06e74c") > versions.parse(
        "Go", "0.0.0-20220801000000-abcdefabcdef"
    )
    assert versions.parse("npm", "1.0.0+build.5") == versions.parse("npm", "1.0.0")
    assert versions.parse("npm", "1.0") is None


@pytest.mark.parametrize(
    "purl",
    [
        "pkg:pypi/Jinja2@2.10",
        "pkg:npm/%40types/node@20.1.0",
        "pkg:npm/lodash@4.17.15",
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
        "pkg:golang/golang.org/x/net@v0.1.0",
        "pkg:cargo/serde@1.0.0",
    ],
)
def test_the_quick_purl_path_agrees_with_packageurl(
    purl: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry.supplychain.vulndb import ecosystems

    quick = ecosystems._simple(purl)
    assert quick is not None
    monkeypatch.setattr(ecosystems, "_simple", lambda _purl: None)  # the full parse
    assert ecosystems.keys(purl) == quick
