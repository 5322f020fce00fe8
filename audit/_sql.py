"""Internal: the append hot path's SQL, run on the DBAPI cursor.

SQLAlchemy Core costs ~30 µs per statement on the reference machine (execution
context, cache key, result wrapping) against ~2 µs for the same statement on
the DBAPI cursor; an append is three statements, so Core alone would use most
of the 200 µs budget that 5,000 appends/s leaves. These statements therefore
run on the DBAPI connection *of the caller's SQLAlchemy connection*, inside
its open transaction, and DBAPI errors are re-raised as SQLAlchemy's
``DBAPIError`` subclasses so callers see the exceptions they expect.

Only drivers whose parameter style we know take this path (sqlite3: named,
psycopg/psycopg2: pyformat); any other driver gets the equivalent Core
statements.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Executable, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError

from audit.schema import audit_events, audit_head

EVENT_FIELDS = (
    "seq",
    "time",
    "actor",
    "action",
    "resource",
    "decision",
    "outcome",
    "details",
    "prev_hash",
    "hash",
    "actor_id",
    "repository",
    "name",
    "version",
)

_SELECT_HEAD = "SELECT last_seq, last_hash, last_time FROM audit_head WHERE id = 1"
_INSERT_EVENT = "INSERT INTO audit_events ({}) VALUES ({})".format(
    ", ".join(EVENT_FIELDS), ", ".join(f":{f}" for f in EVENT_FIELDS)
)
_UPDATE_HEAD = (
    "UPDATE audit_head SET last_seq = :last_seq, last_hash = :last_hash, "
    "last_time = :last_time WHERE id = 1"
)
_NAMED = re.compile(r":(\w+)")


def _style(conn: Connection) -> str | None:
    style = conn.dialect.paramstyle
    if style in ("named", "qmark") and conn.dialect.name == "sqlite":
        return "named"  # sqlite3 accepts :name whatever it advertises
    if style == "pyformat" and conn.dialect.name == "postgresql":
        return "pyformat"
    return None


def _sql(template: str, style: str) -> str:
    return template if style == "named" else _NAMED.sub(r"%(\1)s", template)


def _raise_wrapped(conn: Connection, sql: str, exc: Exception) -> None:
    dbapi = conn.dialect.loaded_dbapi
    if isinstance(exc, dbapi.Error):
        raise DBAPIError.instance(sql, None, exc, dbapi.Error) from exc
    raise exc


def _select_head_core(lock: bool) -> Any:
    query = select(audit_head.c.last_seq, audit_head.c.last_hash, audit_head.c.last_time).where(
        audit_head.c.id == 1
    )
    return query.with_for_update() if lock else query


_UPDATE_HEAD_CORE = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(
        last_seq=bindparam("last_seq"),
        last_hash=bindparam("last_hash"),
        last_time=bindparam("last_time"),
    )
)


def select_head(conn: Connection, *, lock: bool) -> tuple[Any, ...] | None:
    """The head row, locked FOR UPDATE on PostgreSQL when ``lock``."""
    style = _style(conn)
    if style is None:
        row = conn.execute(_select_head_core(lock)).first()
        return None if row is None else tuple(row)
    sql = _SELECT_HEAD + (" FOR UPDATE" if lock and conn.dialect.name == "postgresql" else "")
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        found = cursor.fetchone()
    except Exception as exc:
        _raise_wrapped(conn, sql, exc)
        raise
    finally:
        cursor.close()
    return None if found is None else tuple(found)


def _pipeline(conn: Connection) -> contextlib.AbstractContextManager[Any]:
    """psycopg 3's pipeline mode: the INSERT and the head UPDATE travel in one
    round trip (a quarter of an append's latency on PostgreSQL)."""
    dbapi: Any = conn.connection.dbapi_connection
    pipeline = getattr(dbapi, "pipeline", None)
    return (
        pipeline() if conn.dialect.name == "postgresql" and pipeline else contextlib.nullcontext()
    )


def write_events(conn: Connection, rows: Sequence[dict[str, Any]], head: dict[str, Any]) -> None:
    """Insert event rows and move the head, in the caller's transaction."""
    style = _style(conn)
    if style is None:
        conn.execute(insert(audit_events), list(rows))
        conn.execute(_UPDATE_HEAD_CORE, head)
        return
    insert_sql, update_sql = _sql(_INSERT_EVENT, style), _sql(_UPDATE_HEAD, style)
    cursor = conn.connection.cursor()
    try:
        with _pipeline(conn):
            if len(rows) == 1:
                cursor.execute(insert_sql, rows[0])
            else:
                cursor.executemany(insert_sql, rows)
            cursor.execute(update_sql, head)
    except Exception as exc:
        _raise_wrapped(conn, f"{insert_sql}; {update_sql}", exc)
        raise
    finally:
        cursor.close()


_SCAN = (
    "SELECT seq, time, actor, action, resource, decision, outcome, details, prev_hash, hash "
    "FROM audit_events WHERE seq >= :lo AND seq <= :hi ORDER BY seq"
)
_cursor_names = itertools.count()


@contextlib.contextmanager
def scan_events(conn: Connection, lo: int, hi: int, batch: int) -> Iterator[Iterator[Any]]:
    """Rows of seqs ``lo..hi`` in seq order, as plain tuples.

    Verification reads every byte of the log; the DBAPI cursor saves ~15% of
    the time SQLAlchemy's row objects cost. SQLite's cursor is iterated row by
    row (a ``fetchmany`` list of thousands of tuples makes the cyclic garbage
    collector walk it again and again); PostgreSQL uses a server-side (named)
    cursor that fetches ``batch`` rows per round trip, so memory stays flat.
    DBAPI errors, also those raised while iterating, leave as SQLAlchemy's.
    """
    style = _style(conn)
    if style is None:
        query = (
            select(*[audit_events.c[name] for name in EVENT_FIELDS[:10]])
            .where(audit_events.c.seq >= lo, audit_events.c.seq <= hi)
            .order_by(audit_events.c.seq)
            .execution_options(yield_per=batch)
        )
        yield (tuple(row) for row in conn.execute(query))
        return
    sql = _sql(_SCAN, style)
    if conn.dialect.name == "postgresql":
        dbapi: Any = conn.connection.dbapi_connection
        cursor = dbapi.cursor(name=f"audit_scan_{next(_cursor_names)}")
        cursor.itersize = batch
    else:
        cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, {"lo": lo, "hi": hi})
        yield iter(cursor)
    except Exception as exc:
        _raise_wrapped(conn, sql, exc)
        raise
    finally:
        cursor.close()


# -- touches: a caller's DML statement, compiled once, run with executemany -----------


@dataclass(frozen=True)
class _CompiledDml:
    """One statement compiled for one dialect, with the bind processors of its parameters."""

    sql: str
    compiled: Any
    positions: list[str] | None
    processors: dict[str, Callable[[Any], Any]]

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        params: dict[str, Any] = self.compiled.construct_params(values)
        for name, process in self.processors.items():
            value = params[name]
            if value is not None:
                params[name] = process(value)
        return params if self.positions is None else [params[name] for name in self.positions]


_compiled_dml: dict[tuple[int, str], tuple[Executable, _CompiledDml]] = {}
_compiled_dml_lock = threading.Lock()


def _compile_dml(conn: Connection, statement: Executable) -> _CompiledDml:
    key = (id(statement), conn.dialect.name)
    found = _compiled_dml.get(key)
    if found is not None and found[0] is statement:
        return found[1]
    dialect = conn.dialect
    compiled: Any = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    processors = {}
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    made = _CompiledDml(
        sql=compiled.string,
        compiled=compiled,
        positions=list(compiled.positiontup) if dialect.positional else None,
        processors=processors,
    )
    with _compiled_dml_lock:
        _compiled_dml[key] = (statement, made)  # holds the statement: its id stays unique
    return made


def execute_many(
    conn: Connection, statement: Executable, param_sets: Sequence[Mapping[str, Any]]
) -> None:
    """``conn.execute(statement, param_sets)`` on the DBAPI cursor, in the caller's transaction.

    A read's download counter is one such statement per batch of the group
    committer; through Core it cost as much as the rest of the batch's
    Python put together (execution context, cache key, events).
    """
    if _style(conn) is None:
        conn.execute(statement, list(param_sets))
        return
    dml = _compile_dml(conn, statement)
    rows: list[Any] = [dml.parameters(values) for values in param_sets]
    cursor = conn.connection.cursor()
    try:
        if len(rows) == 1:
            cursor.execute(dml.sql, rows[0])
        else:
            cursor.executemany(dml.sql, rows)
    except Exception as exc:
        _raise_wrapped(conn, dml.sql, exc)
        raise
    finally:
        cursor.close()
