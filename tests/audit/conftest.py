"""Fixtures for the audit tests: real SQLite files and real PostgreSQL databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from audit import AuditLog, NoteSigner
from tests.audit.helpers import StepClock, install, make_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    make: Callable[[], str] = request.getfixturevalue("postgres_database")
    return make()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine with the audit schema installed."""
    engine = make_engine(db_url)
    install(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    install(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def log(clock: StepClock) -> AuditLog:
    return AuditLog(clock=clock)


@pytest.fixture(scope="session")
def signer() -> NoteSigner:
    return NoteSigner.generate("arbiter.test/audit")


@pytest.fixture(scope="session")
def other_signer() -> NoteSigner:
    """Same name, different key: what a forger would use."""
    return NoteSigner.generate("arbiter.test/audit")
