"""The audit tables, their append-only triggers, and the versioned installer.

Tables (SQLAlchemy Core, on :data:`metadata`, which the registry may add to its
Alembic target metadata):

``audit_events``
    One row per event. ``actor``, ``resource``, ``decision`` and ``details``
    hold RFC 8785 canonical JSON text (``decision`` is ``null`` when no policy
    decided), so the hash can be recomputed from the row byte for byte.
    ``actor_id``, ``repository``, ``name`` and ``version`` are copies made for
    filtering and lineage; they are not hashed and never trusted by
    verification.
``audit_head``
    A single row (``id = 1``) with the last seq, hash and time. Writers lock it
    (``SELECT ... FOR UPDATE`` on PostgreSQL; the ``BEGIN IMMEDIATE`` write
    lock on SQLite) so that exactly one transaction extends the chain at a time.
``audit_checkpoints``
    Signed checkpoints: tree size, root hash (hex), the signed note, and when it
    was made.
``audit_tree_nodes``
    A cache of Merkle subtree hashes at levels 8, 16, 24, ... (tiles of 256), so
    that proofs for millions of events cost a few hundred hash operations.
    Derived data: verification recomputes the tree from the events instead.

Triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) on events,
checkpoints and tree nodes. Nothing in this package edits or removes them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    insert,
    select,
)

from audit.errors import SchemaError
from audit.events import GENESIS_HASH

SCHEMA_VERSION = 1
MAX_ACTION_LENGTH = 64
MAX_OUTCOME_LENGTH = 32

metadata = MetaData()

# SQLite makes only "INTEGER PRIMARY KEY" an alias of the rowid (the fast path).
_Seq = BigInteger().with_variant(Integer(), "sqlite")

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=False),
    Column("time", String(32), nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(MAX_ACTION_LENGTH), nullable=False),
    Column("resource", Text, nullable=False),
    Column("decision", Text, nullable=False),
    Column("outcome", String(MAX_OUTCOME_LENGTH), nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("actor_id", Text),
    Column("repository", Text),
    Column("name", Text),
    Column("version", Text),
    Index("ix_audit_events_time", "time"),
    Index("ix_audit_events_action", "action"),
    Index("ix_audit_events_actor_id", "actor_id"),
    Index("ix_audit_events_artifact", "repository", "name", "version"),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("last_time", String(32), nullable=False),
    CheckConstraint("id = 1", name="ck_audit_head_single_row"),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", String(64), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
)

audit_tree_nodes = Table(
    "audit_tree_nodes",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

#: Tables whose rows are never updated or deleted.
APPEND_ONLY_TABLES = ("audit_events", "audit_checkpoints", "audit_tree_nodes")


def _sqlite_trigger_ddl() -> list[str]:
    statements = []
    for table in APPEND_ONLY_TABLES:
        for op in ("UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} "
                f"BEFORE {op} ON {table} BEGIN "
                f"SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END"
            )
    return statements


_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$
"""


def _postgresql_trigger_ddl() -> list[str]:
    statements = [_PG_FUNCTION]
    for table in APPEND_ONLY_TABLES:
        statements.append(
            f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE "
            f"ON {table} FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
        )
        statements.append(
            f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        )
    return statements


def trigger_ddl(dialect_name: str) -> list[str]:
    """The trigger statements for one dialect (``sqlite`` or ``postgresql``)."""
    if dialect_name == "sqlite":
        return _sqlite_trigger_ddl()
    if dialect_name == "postgresql":
        return _postgresql_trigger_ddl()
    raise SchemaError(
        f"the audit log supports SQLite and PostgreSQL, not {dialect_name!r}: "
        "point the registry's database URL at one of them"
    )


def install_v1(conn: Connection) -> None:
    """Create schema version 1 (tables, indexes, triggers, head row) on ``conn``.

    Runs inside the caller's transaction (the registry's Alembic migration, or a
    test). Idempotent, so a re-run after a partial failure completes the job.
    Later schema versions will get their own ``install_vN`` step, never an edit
    of this one, because Alembic revisions that called it must keep meaning the
    same thing.
    """
    statements = trigger_ddl(conn.dialect.name)
    metadata.create_all(conn, checkfirst=True)
    for statement in statements:
        if conn.dialect.paramstyle == "pyformat":  # psycopg reads % as a placeholder
            statement = statement.replace("%", "%%")
        conn.exec_driver_sql(statement)
    if conn.execute(select(audit_head.c.id)).first() is None:
        conn.execute(
            insert(audit_head).values(id=1, last_seq=0, last_hash=GENESIS_HASH, last_time="")
        )
