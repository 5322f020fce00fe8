"""PreparedQuery gives the rows ``Connection.execute`` gives, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    select,
)

from registry.db.prepared import PreparedQuery

metadata = MetaData()
things = Table(
    "prepared_things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(40)),
    Column("labels", JSON),
    Column("created_at", DateTime(timezone=True)),
)
CREATED = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str):  # type: ignore[no-untyped-def]
    engine = create_engine(database_url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            things.insert(),
            [
                {"id": 1, "name": "a", "labels": {"tier": "gold"}, "created_at": CREATED},
                {"id": 2, "name": "b", "labels": None, "created_at": None},
            ],
        )
    yield engine
    metadata.drop_all(engine)
    engine.dispose()


def test_rows_match_execute(engine) -> None:  # type: ignore[no-untyped-def]
    statement = select(things).where(things.c.name == bindparam("name"))
    prepared = PreparedQuery(statement)
    with engine.connect() as conn:
        for name in ("a", "b", "missing"):
            expected = conn.execute(statement, {"name": name}).first()
            found = prepared.first(conn, {"name": name})
            if expected is None:
                assert found is None
                continue
            assert tuple(found) == tuple(expected)
            assert found._fields == ("id", "name", "labels", "created_at")
        assert prepared.first(conn, {"name": "a"}).labels == {"tier": "gold"}


def test_all_rows_in_order(engine) -> None:  # type: ignore[no-untyped-def]
    statement = select(things.c.id, things.c.labels).order_by(things.c.id.desc())
    with engine.connect() as conn:
        expected = [tuple(row) for row in conn.execute(statement).all()]
        assert [tuple(row) for row in PreparedQuery(statement).all(conn, {})] == expected
        assert expected == [(2, None), (1, {"tier": "gold"})]


def test_unprocessed_rows_are_finished_on_demand(engine) -> None:  # type: ignore[no-untyped-def]
    statement = select(things.c.labels, things.c.created_at).where(things.c.id == 1)
    prepared = PreparedQuery(statement)
    with engine.connect() as conn:
        (expected,) = conn.execute(statement).all()
        (raw,) = prepared.all(conn, {}, processed=False)
        assert tuple(prepared.processed(conn.dialect, raw)) == tuple(expected)
        assert raw._fields == ("labels", "created_at")


def test_literals_bound_by_the_statement_are_kept(engine) -> None:  # type: ignore[no-untyped-def]
    statement = select(things.c.id).where(things.c.name == "b", things.c.id > bindparam("low"))
    with engine.connect() as conn:
        assert PreparedQuery(statement).first(conn, {"low": 0}) == (2,)
        assert PreparedQuery(statement).first(conn, {"low": 2}) is None


def test_reads_share_one_transaction(engine) -> None:  # type: ignore[no-untyped-def]
    prepared = PreparedQuery(select(things.c.id).where(things.c.id == bindparam("id")))
    with engine.connect() as conn:
        assert not conn.in_transaction()
        prepared.first(conn, {"id": 1})
        assert conn.in_transaction()  # rolled back when the connection closes


def test_expanding_parameters_are_refused(engine) -> None:  # type: ignore[no-untyped-def]
    statement = select(things.c.id).where(things.c.id.in_(bindparam("ids", expanding=True)))
    with engine.connect() as conn, pytest.raises(TypeError, match="cannot bind parameter 'ids'"):
        PreparedQuery(statement).first(conn, {"ids": [1, 2]})
