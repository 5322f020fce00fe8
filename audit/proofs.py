"""Inclusion and consistency proofs as the API and CLI serve them.

Hashes are hex in JSON, like event hashes. A client verifies a proof against a
checkpoint root it has checked the signature of (see :mod:`audit.checkpoint`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from audit.chain import read_head
from audit.checkpoint import latest_checkpoint
from audit.errors import ChainError, CheckpointError, EventNotFoundError, ProofError
from audit.merkle import (
    consistency_proof,
    event_leaf,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from audit.schema import audit_events
from audit.tree import DatabaseSubtrees


def _hex_list(values: object, what: str) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ProofError(f"{what} must be a list of hex strings")
    return tuple(values)


def _bytes(value: str | bytes, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ProofError(f"{what} is not hex") from None


@dataclass(frozen=True)
class InclusionProof:
    """Proof that event ``seq`` (leaf ``seq - 1``) is in the tree of ``tree_size``."""

    seq: int
    tree_size: int
    event_hash: str
    hashes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "tree_size": self.tree_size,
            "event_hash": self.event_hash,
            "hashes": list(self.hashes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InclusionProof:
        try:
            return cls(
                int(data["seq"]),
                int(data["tree_size"]),
                str(data["event_hash"]),
                _hex_list(data["hashes"], "hashes"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProofError(f"malformed inclusion proof: {exc}") from exc

    def verify(self, root_hash: str | bytes) -> None:
        """Raise :class:`ProofError` unless the event is in the tree with that root."""
        verify_inclusion(
            event_leaf(self.event_hash) if len(self.event_hash) == 64 else b"",
            self.seq - 1,
            self.tree_size,
            [_bytes(h, "proof hash") for h in self.hashes],
            _bytes(root_hash, "root hash"),
        )


@dataclass(frozen=True)
class ConsistencyProof:
    """Proof that the tree of ``new_size`` extends the tree of ``old_size``."""

    old_size: int
    new_size: int
    hashes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"old_size": self.old_size, "new_size": self.new_size, "hashes": list(self.hashes)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConsistencyProof:
        try:
            return cls(
                int(data["old_size"]), int(data["new_size"]), _hex_list(data["hashes"], "hashes")
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProofError(f"malformed consistency proof: {exc}") from exc

    def verify(self, old_root: str | bytes, new_root: str | bytes) -> None:
        """Raise :class:`ProofError` unless new extends old."""
        verify_consistency(
            self.old_size,
            self.new_size,
            _bytes(old_root, "old root"),
            _bytes(new_root, "new root"),
            [_bytes(h, "proof hash") for h in self.hashes],
        )


def _default_size(conn: Connection, tree_size: int | None) -> int:
    if tree_size is not None:
        size = tree_size
    else:
        latest = latest_checkpoint(conn)
        if latest is None:
            raise CheckpointError("no checkpoint yet: create one, or give a tree size")
        size = latest.tree_size
    logged = read_head(conn, lock=False).seq
    if not 0 <= size <= logged:
        raise EventNotFoundError(f"tree size {size} is beyond the log's {logged} events")
    return size


def prove_inclusion(conn: Connection, seq: int, tree_size: int | None = None) -> InclusionProof:
    """Inclusion proof for event ``seq`` in the tree of ``tree_size`` (default:
    the latest checkpoint). Raises :class:`EventNotFoundError` for a seq the
    tree does not hold."""
    size = _default_size(conn, tree_size)
    if not 1 <= seq <= size:
        raise EventNotFoundError(f"event seq {seq} is not in the tree of size {size}")
    source = DatabaseSubtrees(conn)
    hashes = inclusion_proof(source, seq - 1, size)
    event_hash = _event_hash(conn, seq)
    return InclusionProof(seq, size, event_hash, tuple(h.hex() for h in hashes))


def _event_hash(conn: Connection, seq: int) -> str:
    value = conn.execute(select(audit_events.c.hash).where(audit_events.c.seq == seq)).scalar()
    if value is None:
        raise ChainError(f"event seq {seq} is missing from the log", seq=seq)
    return str(value)


def prove_consistency(
    conn: Connection, old_size: int, new_size: int | None = None
) -> ConsistencyProof:
    """Consistency proof between two tree sizes (``new_size`` default: latest checkpoint)."""
    size = _default_size(conn, new_size)
    if not 0 <= old_size <= size:
        raise EventNotFoundError(f"no consistency proof from size {old_size} to {size}")
    hashes = consistency_proof(DatabaseSubtrees(conn), old_size, size)
    return ConsistencyProof(old_size, size, tuple(h.hex() for h in hashes))
