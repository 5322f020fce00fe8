"""Fixtures for supply-chain tests: archives built in the tests, real OSV records.

OSV data (CC-BY 4.0: the PyPA advisory database, the Go vulnerability
database, the GitHub Advisory Database) is read from the repository's
sibling ``shared/osv`` folder, never copied here; tests that need it skip,
saying why, when it is absent.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.supplychain.limits import ScanLimits
from tests.fixtures_app import RegistryApp, make_registry_app

OSV_DIR = Path(__file__).resolve().parents[3] / ".." / "shared" / "osv"

# A handful of known-vulnerable packages, by the record that proves it.
KNOWN_RECORDS = {
    "PyPI.zip": [
        "PYSEC-2023-138.json",  # langchain < 0.0.236, CVSS 3 9.8 (critical)
        "PYSEC-2019-217.json",  # jinja2 2.10 sandbox escape (fixed 2.10.1)
        "PYSEC-2021-66.json",  # jinja2 < 2.11.3 ReDoS
    ],
    "npm.zip": ["GHSA-35jh-r3h4-6jhm.json"],  # lodash < 4.17.21 command injection, 7.2 high
    "Maven.zip": ["GHSA-jfh8-c2jp-5v3q.json"],  # Log4Shell, log4j-core < 2.15.0, 10.0
    "Go.zip": ["GO-2022-0969.json"],  # net/http HTTP/2 DoS (stdlib, SEMVER ranges)
}


def osv_path(name: str) -> Path:
    path = OSV_DIR / name
    if not path.exists():
        print(f"skipping: OSV data {path} is absent (it lives in the repository's ../shared/osv)")
        pytest.skip(f"OSV data {path} is absent")
    return path


@pytest.fixture
def osv_records(tmp_path: Path) -> Path:
    """A directory with the known records, extracted from the shared OSV zips at test time."""
    target = tmp_path / "osv-records"
    target.mkdir()
    for archive, members in KNOWN_RECORDS.items():
        with zipfile.ZipFile(osv_path(archive)) as source:
            names = set(source.namelist())
            for member in members:
                if member in names:
                    (target / member).write_bytes(source.read(member))
    return target


@pytest.fixture
def limits(tmp_path: Path) -> ScanLimits:
    scratch = tmp_path / "scan-tmp"
    scratch.mkdir()
    return ScanLimits(temp_dir=scratch)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[RegistryApp]:
    registry = make_registry_app(tmp_path, f"sqlite:///{tmp_path / 'arbiter.db'}")
    with registry.client:
        registry.create_repo("files")
        yield registry
