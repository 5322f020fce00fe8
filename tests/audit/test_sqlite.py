"""sqlite_immediate: every transaction takes the write lock at BEGIN; durable pragmas."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from audit import SchemaError, sqlite_immediate


def test_pragmas_are_durable_by_default(tmp_path: Path) -> None:
    engine = sqlite_immediate(create_engine(f"sqlite:///{tmp_path / 'a.db'}"))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 60_000
    engine.dispose()


def test_second_writer_waits_at_begin(tmp_path: Path) -> None:
    engine = sqlite_immediate(create_engine(f"sqlite:///{tmp_path / 'a.db'}"), busy_timeout_ms=50)
    with engine.connect() as first, engine.connect() as second:
        first.begin()  # BEGIN IMMEDIATE: the write lock is held before any statement
        with pytest.raises(OperationalError, match="locked"):
            second.begin()
        first.rollback()
        second.begin()
        second.rollback()
    engine.dispose()


def test_readers_can_opt_out(tmp_path: Path) -> None:
    engine = sqlite_immediate(create_engine(f"sqlite:///{tmp_path / 'a.db'}"), busy_timeout_ms=50)
    with engine.connect() as writer, engine.connect() as reader:
        writer.begin()
        reader.execution_options(sqlite_begin="DEFERRED")
        with reader.begin():
            assert reader.exec_driver_sql("SELECT 1").scalar() == 1
        writer.rollback()
    engine.dispose()


def test_savepoints_work_inside_immediate_transactions(tmp_path: Path) -> None:
    engine = sqlite_immediate(create_engine(f"sqlite:///{tmp_path / 'a.db'}"))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        with pytest.raises(RuntimeError), conn.begin_nested():
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
            raise RuntimeError
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
    engine.dispose()


def test_misuse_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="synchronous"):
        sqlite_immediate(create_engine("sqlite://"), synchronous="SOMETIMES")
    with pytest.raises(SchemaError, match="journal_mode"):
        sqlite_immediate(create_engine("sqlite://"), journal_mode="wal; DROP TABLE x")
    with pytest.raises(SchemaError, match="SQLite engine"):
        sqlite_immediate(create_engine("postgresql+psycopg://u@127.0.0.1:1/db"))
    engine = sqlite_immediate(create_engine(f"sqlite:///{tmp_path / 'a.db'}"))
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="SOMETIMES")
        with pytest.raises(SchemaError, match="sqlite_begin"):
            conn.begin()
    engine.dispose()
