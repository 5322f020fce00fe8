"""Shared pytest fixtures.

PostgreSQL (owned by the audit work, reusable by everyone):

* ``postgres_cluster`` (session): a throwaway cluster on 127.0.0.1, removed at
  the end of the session; see :mod:`tests.pg`.
* ``postgres_url`` (session): SQLAlchemy URL
  (``postgresql+psycopg://postgres@127.0.0.1:<port>/<db>``) of one database
  created for the session.
* ``postgres_database`` (function): a factory; each call creates a fresh empty
  database and returns its URL; all are dropped after the test.
* ``fresh_postgres_url`` (function): one fresh database for this test.

Tests using any of them are marked ``postgres`` automatically. Set
``ARBITER_SKIP_POSTGRES=1`` to skip them on a machine without PostgreSQL
(otherwise a missing server is an error, so CI cannot silently skip them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.pg import PostgresCluster, PostgresUnavailable

_PG_FIXTURES = {"postgres_cluster", "postgres_url", "postgres_database", "fresh_postgres_url"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _PG_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    if os.environ.get("ARBITER_SKIP_POSTGRES") == "1":
        pytest.skip("ARBITER_SKIP_POSTGRES=1")
    try:
        cluster = PostgresCluster().start()
    except PostgresUnavailable as exc:
        pytest.fail(f"cannot start a throwaway PostgreSQL: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    return postgres_cluster.create_database("arbiter_session")


@pytest.fixture
def postgres_database(postgres_cluster: PostgresCluster) -> Iterator[Callable[[], str]]:
    created: list[str] = []

    def make() -> str:
        url = postgres_cluster.create_database()
        created.append(url.rsplit("/", 1)[1])
        return url

    yield make
    for name in created:
        postgres_cluster.drop_database(name)


@pytest.fixture
def fresh_postgres_url(postgres_database: Callable[[], str]) -> str:
    return postgres_database()
