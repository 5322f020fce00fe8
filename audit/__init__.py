"""The evidence: a hash-chained, append-only audit log with signed Merkle checkpoints.

What the registry calls (see ``docs/CONTRACTS.md``):

* :func:`install_v1` from the Alembic migration;
* :class:`AuditLog` ``.append(conn, draft)`` in the transaction of every change;
* :func:`sqlite_immediate` on SQLite engines; :class:`GroupCommitter` for
  group commit, :class:`LoopCommitter` for an event loop's own appends;
* :func:`create_checkpoint` / :func:`checkpoint_job` and
  :func:`load_or_create_signing_key` for signed checkpoints;
* :func:`prove_inclusion` / :func:`prove_consistency` for the proof endpoints;
* :func:`verify_log` / :func:`verify_database`, :func:`export_events`, :func:`verify_export`,
  :func:`query_events`, :func:`build_lineage` for the CLI and API.

Every error derives from :class:`AuditError`; every verification failure from
:class:`AuditVerificationError`.
"""

from audit._batch import Touch
from audit.chain import AuditLog, Head, PreparedDraft, format_time, prepare, utc_now
from audit.checkpoint import (
    Checkpoint,
    CheckpointBody,
    checkpoint_job,
    create_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    open_checkpoint,
    scheduled_checkpoint,
)
from audit.committer import GroupCommitter
from audit.errors import (
    AuditError,
    AuditVerificationError,
    ChainError,
    CheckpointError,
    CheckpointFormatError,
    CheckpointMismatchError,
    CorruptEventError,
    EventEncodingError,
    EventNotFoundError,
    ExportTruncatedError,
    ExportVerificationError,
    ProofError,
    SchemaError,
    SignatureError,
    SigningKeyError,
)
from audit.events import GENESIS_HASH, Event, EventDraft
from audit.export import ExportReport, ExportSummary, export_events, verify_export
from audit.lineage import Lineage, Pulls, Relation, Step, build_lineage, lineage_from_events
from audit.loop_committer import LoopCommitter
from audit.note import NoteSigner, NoteVerifier, load_or_create_signing_key, public_key_text
from audit.proofs import ConsistencyProof, InclusionProof, prove_consistency, prove_inclusion
from audit.query import EventFilter, query_events, render_csv, render_json
from audit.schema import install_v1
from audit.sqlite import sqlite_immediate
from audit.verify import VerificationReport, verify_database, verify_log

__all__ = [
    "GENESIS_HASH",
    "AuditError",
    "AuditLog",
    "AuditVerificationError",
    "ChainError",
    "Checkpoint",
    "CheckpointBody",
    "CheckpointError",
    "CheckpointFormatError",
    "CheckpointMismatchError",
    "ConsistencyProof",
    "CorruptEventError",
    "Event",
    "EventDraft",
    "EventEncodingError",
    "EventFilter",
    "EventNotFoundError",
    "ExportReport",
    "ExportSummary",
    "ExportTruncatedError",
    "ExportVerificationError",
    "GroupCommitter",
    "Head",
    "InclusionProof",
    "Lineage",
    "LoopCommitter",
    "NoteSigner",
    "NoteVerifier",
    "PreparedDraft",
    "ProofError",
    "Pulls",
    "Relation",
    "SchemaError",
    "SignatureError",
    "SigningKeyError",
    "Step",
    "Touch",
    "VerificationReport",
    "build_lineage",
    "checkpoint_job",
    "create_checkpoint",
    "export_events",
    "format_time",
    "install_v1",
    "latest_checkpoint",
    "lineage_from_events",
    "list_checkpoints",
    "load_or_create_signing_key",
    "open_checkpoint",
    "prepare",
    "prove_consistency",
    "prove_inclusion",
    "public_key_text",
    "query_events",
    "render_csv",
    "render_json",
    "scheduled_checkpoint",
    "sqlite_immediate",
    "utc_now",
    "verify_database",
    "verify_export",
    "verify_log",
]
