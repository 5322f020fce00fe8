"""The database itself refuses to edit or remove evidence."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.exc import DBAPIError

from audit import AuditLog, NoteSigner, create_checkpoint, install_v1
from audit.errors import SchemaError
from audit.schema import audit_checkpoints, audit_events, audit_tree_nodes, metadata
from tests.audit.helpers import append_n, install, make_engine

STATEMENTS = [
    "UPDATE audit_events SET outcome = 'denied' WHERE seq = 1",
    "UPDATE audit_events SET seq = seq + 100",
    "DELETE FROM audit_events WHERE seq = 2",
    "DELETE FROM audit_events",
    "UPDATE audit_checkpoints SET note = 'x'",
    "DELETE FROM audit_checkpoints",
    "UPDATE audit_tree_nodes SET hash = hash",
    "DELETE FROM audit_tree_nodes",
]


@pytest.fixture
def filled(engine: Engine, signer: NoteSigner) -> Engine:
    append_n(engine, 300)
    with engine.begin() as conn:
        create_checkpoint(conn, signer)
    return engine


@pytest.mark.parametrize("statement", STATEMENTS)
def test_triggers_refuse_update_and_delete(filled: Engine, statement: str) -> None:
    with pytest.raises(DBAPIError, match="append-only"), filled.begin() as conn:
        conn.exec_driver_sql(statement)
    with filled.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(audit_events)) == 300
        assert conn.scalar(select(func.count()).select_from(audit_checkpoints)) == 1
        assert conn.scalar(select(func.count()).select_from(audit_tree_nodes)) == 1


def test_truncate_is_refused_on_postgres(fresh_postgres_url: str) -> None:
    engine = make_engine(fresh_postgres_url)
    try:
        install(engine)
        append_n(engine, 3)
        for table in ("audit_events", "audit_checkpoints", "audit_tree_nodes"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.exec_driver_sql(f"TRUNCATE {table}")
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(audit_events)) == 3
    finally:
        engine.dispose()


def test_install_is_idempotent_and_creates_everything(engine: Engine) -> None:
    with engine.begin() as conn:
        install_v1(conn)  # second run
    with engine.connect() as conn:
        names = set(conn.dialect.get_table_names(conn))
        assert {t.name for t in metadata.sorted_tables} <= names
    append_n(engine, 2)
    with engine.connect() as conn:
        assert AuditLog().head(conn).seq == 2


def test_unsupported_dialect_is_refused() -> None:
    class FakeDialect:
        name = "mysql"

    class FakeConn:
        dialect = FakeDialect()

    with pytest.raises(SchemaError, match="SQLite and PostgreSQL"):
        install_v1(FakeConn())  # type: ignore[arg-type]


def test_in_memory_sqlite_works_for_quick_tools() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        install_v1(conn)
        AuditLog().append_many(conn, [])
