"""What gather() hands the policy about a version, on SQLite and on PostgreSQL.

The rows are written here, so every expected value below comes from
this test's own inputs: a repository with labels, a version with two files,
labels, two tags, provenance and a scan summary with findings and an SBOM.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from registry.config import Settings
from registry.db.models import ArtifactFile, Blob, Label, Package, Repository, Tag, Version
from registry.errors import NotFound, WrongFormat
from registry.governance import PULL, Action, Resource
from registry.governance.facts import Facts, gather, gather_many
from registry.services import Services, build_services
from registry.supplychain.models import ScanSummary

CREATED = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
PULLED = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
REPOSITORY = {"name": "apps", "format": "generic", "kind": "hosted", "labels": {"team": "core"}}


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Iterator[Services]:
    built = build_services(Settings(data=tmp_path / "data", database_url=database_url))
    with built.db.writer() as session:
        repository = Repository(**REPOSITORY)
        session.add(repository)
        session.flush()
        package = Package(repository_id=repository.id, name="tool")
        session.add(package)
        session.flush()
        scanned = Version(
            package_id=package.id,
            version="1.0",
            created_at=CREATED,
            last_pulled_at=PULLED,
            downloads=7,
            provenance={"builder": "ci"},
        )
        unscanned = Version(package_id=package.id, version="2.0", created_at=CREATED)
        session.add_all([scanned, unscanned])
        session.flush()
        for i, size in enumerate((100, 2000)):
            digest = f"sha256:{i:064d}"
            session.add(Blob(digest=digest, size=size))
            session.flush()
            session.add(
                ArtifactFile(version_id=scanned.id, filename=f"f{i}", blob_digest=digest, size=size)
            )
        session.add_all(
            [
                Label(version_id=scanned.id, key="legal-hold", value="case-7"),
                Label(version_id=scanned.id, key="stage", value="prod"),
                Tag(package_id=package.id, name="stable", version_id=scanned.id),
                Tag(package_id=package.id, name="latest", version_id=scanned.id),
                ScanSummary(
                    version_id=scanned.id,
                    status="complete",
                    components=12,
                    licenses=["Apache-2.0", "MIT"],
                    purls=["pkg:pypi/requests@2.31.0"],
                    counts={"critical": 1, "high": 2},
                    ids=["CVE-2024-1", "GHSA-xxxx"],
                    fixable=["CVE-2024-1"],
                ),
            ]
        )
    yield built
    built.db.dispose()


def _pull(name: str | None = None, version: str | None = None, **artifact: Any) -> Action:
    resource = Resource(repository="apps", format="generic", name=name, version=version)
    return Action(verb=PULL, resource=resource, artifact=artifact)


SCANNED = {
    "size": 2100,
    "created_at": CREATED,
    "labels": {"legal-hold": "case-7", "stage": "prod"},
    "tags": ["latest", "stable"],
    "last_pulled_at": PULLED,
    "downloads": 7,
    "provenance": {"builder": "ci"},
    "sbom": {"licenses": ["Apache-2.0", "MIT"], "purls": ["pkg:pypi/requests@2.31.0"]},
    "vulnerabilities": {
        "critical": 1,
        "high": 2,
        "medium": 0,
        "low": 0,
        "unknown": 0,
        "ids": ["CVE-2024-1", "GHSA-xxxx"],
        "fixable": ["CVE-2024-1"],
    },
    "scan": {"status": "complete", "reason": None, "components": 12},
}
UNSCANNED = {
    "size": 0,
    "created_at": CREATED,
    "labels": {},
    "tags": [],
    "last_pulled_at": None,
    "downloads": 0,
    "provenance": {},
    "scan": {"status": "pending", "reason": None, "components": 0},
}
CASES = [
    (_pull("tool", "1.0"), SCANNED),
    (_pull("tool", "2.0"), UNSCANNED),
    (_pull("tool", "1.0", size=5, digest="sha256:x"), {**SCANNED, "size": 5, "digest": "sha256:x"}),
    (_pull("tool", "9.9", size=5), {"size": 5}),
    (_pull("other", "1.0"), {}),
    (_pull(), {}),
]


def test_gather_returns_the_stored_facts(services: Services) -> None:
    expected = [Facts(repository=REPOSITORY, artifact=artifact) for _action, artifact in CASES]
    actions = [action for action, _artifact in CASES]
    with services.db.reader() as session:
        assert [gather(session, action) for action in actions] == expected
        assert gather_many(session, actions) == expected
    with services.db.read_engine.connect() as conn:
        assert [gather(conn, action) for action in actions] == expected
        assert gather_many(conn, actions) == expected


def test_gather_refuses_unknown_repositories_and_other_formats(services: Services) -> None:
    with services.db.reader() as session:
        with pytest.raises(NotFound, match="'nowhere' not found"):
            gather(session, Action(verb=PULL, resource=Resource(repository="nowhere")))
        npm = Resource(repository="apps", format="npm", name="tool", version="1.0")
        with pytest.raises(WrongFormat, match="holds generic artifacts, not npm"):
            gather(session, Action(verb=PULL, resource=npm))
