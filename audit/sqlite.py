"""Make a SQLite engine safe for the audit chain: every transaction BEGIN IMMEDIATE.

Python's ``sqlite3`` module starts transactions with a DEFERRED ``BEGIN`` (and
only before DML), so two writers can both read the chain head and then race for
the write lock; the loser fails with ``database is locked`` after doing its
work. ``BEGIN IMMEDIATE`` takes the write lock when the transaction starts, so
the head is always read under the lock and writers queue (for up to
``busy_timeout_ms``) instead of failing.

Usage, right after creating the engine and before the first connection::

    engine = create_engine("sqlite:///var/arbiter.db")
    sqlite_immediate(engine)             # WAL, synchronous=FULL, 60 s busy timeout
    with engine.begin() as conn:         # BEGIN IMMEDIATE
        ...state change...
        AuditLog().append(conn, draft)   # same transaction

Durability: with ``journal_mode=WAL`` and ``synchronous=FULL`` (the defaults
here, and what the registry runs in production) every COMMIT is fsynced before
it returns, so an acknowledged append survives power loss. ``NORMAL`` would be
faster and still consistent, but may lose the last commits on power loss.

Read-only work (verification, export, queries) does not need the write lock; a
connection can opt out with ``conn.execution_options(sqlite_begin="DEFERRED")``
before its first statement, so long reads do not stall writers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, event

from audit.errors import SchemaError

BEGIN_OPTION = "sqlite_begin"
_BEGIN_MODES = {"IMMEDIATE", "DEFERRED", "EXCLUSIVE"}
_JOURNAL_MODES = {"WAL", "DELETE", "TRUNCATE", "PERSIST", "MEMORY"}
_SYNC_MODES = {"OFF", "NORMAL", "FULL", "EXTRA"}


def _choice(value: str | None, allowed: set[str], what: str) -> str | None:
    if value is None:
        return None
    upper = value.upper()
    if upper not in allowed:
        raise SchemaError(f"{what} must be one of {sorted(allowed)}, not {value!r}")
    return upper


def sqlite_immediate(
    engine: Engine,
    *,
    busy_timeout_ms: int = 60_000,
    journal_mode: str | None = "WAL",
    synchronous: str | None = "FULL",
) -> Engine:
    """Install listeners so every transaction on ``engine`` begins IMMEDIATE.

    Also sets the busy timeout and, unless given ``None``, the journal and
    synchronous modes on every new connection. Existing pooled connections are
    disposed so that none escapes the listeners. Returns ``engine``.
    """
    if engine.dialect.name != "sqlite":
        raise SchemaError(f"sqlite_immediate needs a SQLite engine, not {engine.dialect.name!r}")
    journal = _choice(journal_mode, _JOURNAL_MODES, "journal_mode")
    sync = _choice(synchronous, _SYNC_MODES, "synchronous")
    timeout = int(busy_timeout_ms)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the sqlite3 module from issuing its own BEGIN/COMMIT around DDL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {timeout}")
            if journal is not None:
                cursor.execute(f"PRAGMA journal_mode = {journal}")
            if sync is not None:
                cursor.execute(f"PRAGMA synchronous = {sync}")
        finally:
            cursor.close()

    def on_begin(conn: Connection) -> None:
        mode = str(conn.get_execution_options().get(BEGIN_OPTION, "IMMEDIATE")).upper()
        if mode not in _BEGIN_MODES:
            raise SchemaError(f"{BEGIN_OPTION} must be one of {sorted(_BEGIN_MODES)}")
        conn.exec_driver_sql(f"BEGIN {mode}")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    engine.dispose()
    return engine
