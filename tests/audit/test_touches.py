"""A touch runs on the DBAPI cursor yet stores exactly what SQLAlchemy Core would."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Table,
    bindparam,
    update,
)

from audit._sql import execute_many


def test_a_touch_binds_values_as_core_does(engine: Engine) -> None:
    """Bind processors (DateTime, JSON) and literal parameters are applied on the raw path."""
    table = Table("touched", MetaData(), Column("id", Integer, primary_key=True),
                  Column("at", DateTime(timezone=True)), Column("meta", JSON),
                  Column("n", Integer, nullable=False))  # fmt: skip
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": i, "n": 0} for i in (1, 2, 3)])
    statement = (
        update(table)
        .where(table.c.id == bindparam("row"))
        .values(n=table.c.n + 1, at=bindparam("at"), meta=bindparam("meta"))
    )
    when = datetime(2026, 11, 29, 6, 0, 0, 123456, tzinfo=UTC)
    values = {"at": when, "meta": {"k": [1, "é"]}}
    with engine.begin() as conn:
        execute_many(conn, statement, [{"row": 1, **values}])  # one set: execute
        execute_many(conn, statement, [{"row": 3, **values}, {"row": 3, **values}])  # executemany
    with engine.begin() as conn:
        conn.execute(statement, [{"row": 2, **values}])
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT id, at, meta, n FROM touched ORDER BY id").all()
    by_id = {row[0]: tuple(row[1:]) for row in stored}
    assert by_id[1] == by_id[2]  # raw path == Core, byte for byte as stored
    assert by_id[1][2] == 1 and by_id[3][2] == 2
    assert by_id[3][:2] == by_id[2][:2]
