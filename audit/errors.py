"""Every failure the audit package raises, under one root.

Callers catch :class:`AuditError` to handle anything from this package, or one
of the narrower types when they can act on it. Verification failures all derive
from :class:`AuditVerificationError` so that nothing in the package ever
answers "not verified" with a value a caller could forget to check.
"""

from __future__ import annotations


class AuditError(Exception):
    """Root of every error raised by :mod:`audit`."""

    def diagnostics(self) -> str:
        """A paragraph for people: what went wrong and what to do about it."""
        return f"{type(self).__name__}: {self}"


class EventEncodingError(AuditError):
    """A draft cannot be written as RFC 8785 JSON (floats out of range, huge
    integers, non-string keys, lone surrogates, objects that are not JSON)."""


class SchemaError(AuditError):
    """The audit tables are missing or in an unexpected state."""


class EventNotFoundError(AuditError):
    """A seq or tree size that the log does not (yet) hold was asked for."""


class CheckpointError(AuditError):
    """No checkpoint fits the request, or a stored checkpoint is malformed."""


class SigningKeyError(AuditError):
    """A signing or verifier key is malformed, unreadable or unsafe on disk."""


class CorruptEventError(AuditError):
    """A stored event row cannot be read back as JSON (found while reading,
    not verifying; run :func:`audit.verify.verify_log` to locate tampering)."""

    def __init__(self, seq: int, message: str) -> None:
        super().__init__(f"event seq {seq}: {message}")
        self.seq = seq


class AuditVerificationError(AuditError):
    """Evidence does not verify. ``seq`` names the first bad event when known."""

    def __init__(self, message: str, *, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq

    def diagnostics(self) -> str:
        where = f" (first bad seq: {self.seq})" if self.seq is not None else ""
        return (
            f"{type(self).__name__}{where}: {self}\n"
            "The audit evidence has been altered or is incomplete. Keep the database and "
            "any exports untouched and compare them with an earlier export or checkpoint."
        )


class ChainError(AuditVerificationError):
    """An event's hash, prev_hash link, seq or time breaks the chain."""


class ProofError(AuditVerificationError):
    """An inclusion, consistency or range proof does not lead to the claimed root."""


class SignatureError(AuditVerificationError):
    """A signed note carries no valid signature by the expected key."""


class CheckpointMismatchError(AuditVerificationError):
    """A signed checkpoint disagrees with the tree recomputed from the events."""


class ExportVerificationError(AuditVerificationError):
    """An export file is malformed or its content does not verify.

    ``line`` is the 1-based line number of the offending line when known.
    """

    def __init__(self, message: str, *, line: int | None = None, seq: int | None = None) -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__(where + message, seq=seq)
        self.line = line


class ExportTruncatedError(ExportVerificationError):
    """An export file ends before its trailer: it was cut short."""


class CheckpointFormatError(AuditVerificationError):
    """A checkpoint note's body is not a C2SP tlog-checkpoint."""
