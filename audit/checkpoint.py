"""Signed Merkle checkpoints in the C2SP tlog-checkpoint format.

A checkpoint body (https://c2sp.org/tlog-checkpoint) is::

    <origin>
    <tree size, decimal>
    <base64 root hash>
    [extension lines]

signed as a C2SP signed note (:mod:`audit.note`). Checkpoints are made on a
schedule and on demand by :func:`create_checkpoint`; before signing it checks
the new tree is consistent with the last signed one, so the log never signs a
rewritten history.

Scheduling (the registry wires it; APScheduler 3)::

    scheduler.add_job(checkpoint_job(engine, signer), "interval", minutes=5,
                      id="audit-checkpoint", max_instances=1, coalesce=True)

With a persistent job store (PostgreSQL), jobs must be importable by name with
picklable arguments; use :func:`scheduled_checkpoint` instead::

    scheduler.add_job("audit.checkpoint:scheduled_checkpoint", "interval",
                      args=[database_url, key_path], minutes=5, ...)

Two instances creating the same checkpoint at once is harmless: the signature
is deterministic and the second insert is ignored.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, select

from audit.chain import Clock, format_time, read_head, utc_now
from audit.errors import CheckpointFormatError, CheckpointMismatchError, ProofError
from audit.merkle import HASH_SIZE, consistency_proof, tree_root, verify_consistency
from audit.note import NoteSigner, NoteVerifier, load_or_create_signing_key, open_note
from audit.schema import audit_checkpoints
from audit.tree import DatabaseSubtrees, extend_node_cache, insert_ignoring_duplicates


@dataclass(frozen=True)
class CheckpointBody:
    """The signed statement: this log (origin) had this root at this size."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """The note text to sign."""
        root = base64.b64encode(self.root_hash).decode()
        lines = [self.origin, str(self.tree_size), root, *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> CheckpointBody:
        """Parse a checkpoint note text; raises :class:`CheckpointFormatError`."""
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
            raise CheckpointFormatError("checkpoint body needs origin, size and root lines")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise CheckpointFormatError(f"checkpoint tree size {size_text!r} is not a decimal")
        try:
            root = base64.b64decode(root_text, validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointFormatError("checkpoint root hash is not base64") from None
        if len(root) != HASH_SIZE:
            raise CheckpointFormatError(f"checkpoint root hash is {len(root)} bytes, not 32")
        return cls(origin, int(size_text), root, tuple(lines[3:-1]))


def open_checkpoint(
    note: str, verifier: NoteVerifier, *, origin: str | None = None
) -> CheckpointBody:
    """Verify a checkpoint note's signature and parse it.

    ``origin``, when given, must match: a checkpoint of another log signed by
    the same key proves nothing about this one.
    """
    body = CheckpointBody.parse(open_note(note, verifier))
    if origin is not None and body.origin != origin:
        raise CheckpointFormatError(f"checkpoint is for log {body.origin!r}, expected {origin!r}")
    return body


@dataclass(frozen=True)
class Checkpoint:
    """A stored checkpoint row. ``note`` is authoritative; the rest are copies."""

    tree_size: int
    root_hash: str
    note: str
    created_at: str

    def open(self, verifier: NoteVerifier, *, origin: str | None = None) -> CheckpointBody:
        """Verify the signature and that the row agrees with what was signed."""
        body = open_checkpoint(self.note, verifier, origin=origin)
        if body.tree_size != self.tree_size or body.root_hash.hex() != self.root_hash:
            raise CheckpointMismatchError(
                f"checkpoint row for size {self.tree_size} disagrees with its signed note"
            )
        return body

    def to_json(self) -> dict[str, object]:
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "note": self.note,
            "created_at": self.created_at,
        }


_COLUMNS = (
    audit_checkpoints.c.tree_size,
    audit_checkpoints.c.root_hash,
    audit_checkpoints.c.note,
    audit_checkpoints.c.created_at,
)


def _checkpoint(row: Any) -> Checkpoint:
    size, root, note, created = row
    return Checkpoint(int(size), str(root), str(note), str(created))


def latest_checkpoint(conn: Connection) -> Checkpoint | None:
    """The checkpoint with the largest tree size, if any."""
    row = conn.execute(
        select(*_COLUMNS).order_by(audit_checkpoints.c.tree_size.desc()).limit(1)
    ).first()
    return None if row is None else _checkpoint(row)


def covering_checkpoint(conn: Connection, size: int) -> Checkpoint | None:
    """The smallest checkpoint whose tree holds at least ``size`` events."""
    row = conn.execute(
        select(*_COLUMNS)
        .where(audit_checkpoints.c.tree_size >= size)
        .order_by(audit_checkpoints.c.tree_size)
        .limit(1)
    ).first()
    return None if row is None else _checkpoint(row)


def list_checkpoints(conn: Connection) -> list[Checkpoint]:
    """All checkpoints by tree size (one per checkpoint run: a short list)."""
    rows = conn.execute(select(*_COLUMNS).order_by(audit_checkpoints.c.tree_size))
    return [_checkpoint(row) for row in rows]


def create_checkpoint(
    conn: Connection,
    signer: NoteSigner,
    *,
    origin: str | None = None,
    clock: Clock = utc_now,
) -> Checkpoint:
    """Sign and store a checkpoint of the log as committed now; return it.

    Returns the existing checkpoint when the log has not grown. Raises
    :class:`CheckpointMismatchError` instead of signing when the tree no longer
    extends the last checkpoint (the events under it were rewritten).
    Runs in ``conn``'s transaction; cost grows with the events since the last
    checkpoint (it extends the proof node cache).
    """
    size = read_head(conn, lock=False).seq
    latest = latest_checkpoint(conn)
    if latest is not None and latest.tree_size == size:
        return latest
    if latest is not None and latest.tree_size > size:
        raise CheckpointMismatchError(
            f"the log holds {size} events but checkpoint {latest.tree_size} was signed",
            seq=size + 1,
        )
    extend_node_cache(conn, size)
    source = DatabaseSubtrees(conn)
    root = tree_root(source, size)
    if latest is not None:
        _check_extends(source, latest, size, root)
    note = signer.sign(CheckpointBody(origin or signer.name, size, root).text())
    conn.execute(
        insert_ignoring_duplicates(conn, audit_checkpoints),
        [
            {
                "tree_size": size,
                "root_hash": root.hex(),
                "note": note,
                "created_at": format_time(clock()),
            }
        ],
    )
    stored = covering_checkpoint(conn, size)
    if stored is None or stored.tree_size != size:  # pragma: no cover - defensive
        raise CheckpointMismatchError(f"checkpoint {size} was not stored")
    return stored


def _check_extends(source: DatabaseSubtrees, latest: Checkpoint, size: int, root: bytes) -> None:
    proof = consistency_proof(source, latest.tree_size, size)
    try:
        verify_consistency(latest.tree_size, size, bytes.fromhex(latest.root_hash), root, proof)
    except ProofError as exc:
        raise CheckpointMismatchError(
            f"refusing to sign size {size}: the log no longer extends checkpoint "
            f"{latest.tree_size} ({exc}); run `arbiter audit verify`",
            seq=latest.tree_size,
        ) from exc


def checkpoint_job(
    engine: Engine, signer: NoteSigner, *, origin: str | None = None, clock: Clock = utc_now
) -> Callable[[], Checkpoint]:
    """A zero-argument callable for an in-memory APScheduler job store."""

    def audit_checkpoint() -> Checkpoint:
        with engine.begin() as conn:
            return create_checkpoint(conn, signer, origin=origin, clock=clock)

    return audit_checkpoint


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine_for(database_url: str) -> Engine:
    with _ENGINES_LOCK:
        engine = _ENGINES.get(database_url)
        if engine is None:
            engine = create_engine(database_url)
            if engine.dialect.name == "sqlite":
                from audit.sqlite import sqlite_immediate

                sqlite_immediate(engine)
            _ENGINES[database_url] = engine
        return engine


def scheduled_checkpoint(database_url: str, key_path: str, origin: str | None = None) -> int:
    """Job function for persistent APScheduler job stores (picklable arguments).

    Returns the tree size of the checkpoint now in force.
    """
    signer = load_or_create_signing_key(key_path)
    return checkpoint_job(_engine_for(database_url), signer, origin=origin)().tree_size
