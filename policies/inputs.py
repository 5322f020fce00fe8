"""Build the versioned policy input document, and its digest, with pure functions.

The registry gathers facts; these functions give them the one shape every
policy reads (documented field by field in ``rego/README.md``), so that the
Rego never has to guess which keys exist. Nothing here talks to an engine, so
the shape can be tested on its own.

The digest is SHA-256 over the RFC 8785 (JCS) canonical JSON of the document:
the audit log records it beside each decision, so anyone holding the input can
prove which facts a decision was made on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import rfc8785

from policies.errors import PolicyInputError

INPUT_VERSION = 1
SUBJECT_KINDS = frozenset({"user", "robot", "anonymous"})
STAGES = frozenset({"request", "content"})
STAGE_REQUEST = "request"
STAGE_CONTENT = "content"
# I-JSON (RFC 7493) integers: what every JSON reader, and RFC 8785, accepts exactly.
_MAX_SAFE_INT = 2**53 - 1


@dataclass(frozen=True)
class Subject:
    """Who acts. ``roles`` are bindings such as ``"admin"`` or ``"writer:REPO"``."""

    id: str
    kind: str
    roles: Sequence[str] = ()
    teams: Sequence[str] = ()


@dataclass(frozen=True)
class Resource:
    """What the action is about; only ``repository`` is always known."""

    repository: str
    format: str = ""
    name: str | None = None
    version: str | None = None
    digest: str | None = None


@dataclass(frozen=True)
class Repository:
    """Facts about the repository itself (public visibility lives in ``labels``)."""

    name: str
    format: str = ""
    kind: str = "hosted"
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Artifact:
    """What the registry knows about the artifact: metadata, SBOM, findings, usage."""

    size: int = 0
    created_at: datetime | str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    tags: Sequence[str] = ()
    licenses: Sequence[str] = ()
    purls: Sequence[str] = ()
    critical: int = 0
    high: int = 0
    vulnerability_ids: Sequence[str] = ()
    last_pulled_at: datetime | str | None = None
    downloads: int = 0
    provenance: Mapping[str, Any] = field(default_factory=dict)
    medium: int = 0
    low: int = 0
    unknown: int = 0
    fixable_ids: Sequence[str] = ()
    scan_status: str = "pending"
    scan_reason: str | None = None
    components: int = 0


@dataclass(frozen=True)
class Context:
    """When and through what the action was requested, and the push stage."""

    time: datetime | str
    request_id: str = ""
    client: str = ""
    stage: str = STAGE_REQUEST


@dataclass(frozen=True)
class TagChange:
    """A tag about to point at ``resource.digest``; ``current_digest`` is where it points now."""

    name: str
    current_digest: str | None = None


def rfc3339(moment: datetime | str | None) -> str | None:
    """RFC 3339 text in UTC with a ``Z`` suffix; strings pass through unchanged.

    Naive datetimes are refused: a policy comparing times across time zones
    must never guess which zone was meant.
    """
    if moment is None or isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        raise PolicyInputError(
            f"time {moment.isoformat()} has no time zone; pass an aware datetime"
        )
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def subject_doc(subject: Subject) -> dict[str, Any]:
    """``input.subject``; refuses a kind the policies do not know."""
    if subject.kind not in SUBJECT_KINDS:
        kinds = ", ".join(sorted(SUBJECT_KINDS))
        raise PolicyInputError(f"subject kind {subject.kind!r} is not one of {kinds}")
    return {
        "id": subject.id,
        "kind": subject.kind,
        "roles": list(subject.roles),
        "teams": list(subject.teams),
    }


def resource_doc(resource: Resource) -> dict[str, Any]:
    """``input.resource``: unknown parts are ``null``, never missing."""
    return {
        "repository": resource.repository,
        "format": resource.format,
        "name": resource.name,
        "version": resource.version,
        "digest": resource.digest,
    }


def repository_doc(repository: Repository) -> dict[str, Any]:
    """``input.repository``: the repository's own facts."""
    return {
        "name": repository.name,
        "format": repository.format,
        "kind": repository.kind,
        "labels": dict(repository.labels),
    }


def artifact_doc(artifact: Artifact) -> dict[str, Any]:
    """``input.artifact`` as DESIGN.md nests it (``sbom``, ``vulnerabilities``), plus ``scan``."""
    return {
        "size": artifact.size,
        "created_at": rfc3339(artifact.created_at),
        "labels": dict(artifact.labels),
        "tags": list(artifact.tags),
        "sbom": {"licenses": list(artifact.licenses), "purls": list(artifact.purls)},
        "vulnerabilities": {
            "critical": artifact.critical,
            "high": artifact.high,
            "medium": artifact.medium,
            "low": artifact.low,
            "unknown": artifact.unknown,
            "ids": list(artifact.vulnerability_ids),
            "fixable": list(artifact.fixable_ids),
        },
        "scan": {
            "status": artifact.scan_status,
            "reason": artifact.scan_reason,
            "components": artifact.components,
        },
        "last_pulled_at": rfc3339(artifact.last_pulled_at),
        "downloads": artifact.downloads,
        "provenance": dict(artifact.provenance),
    }


def context_doc(context: Context) -> dict[str, Any]:
    """``input.context``; refuses a push stage other than ``request``/``content``."""
    if context.stage not in STAGES:
        raise PolicyInputError(f"stage {context.stage!r} is not one of content, request")
    return {
        "time": rfc3339(context.time),
        "request_id": context.request_id,
        "client": context.client,
        "stage": context.stage,
    }


def build_input(
    *,
    action: str,
    subject: Subject,
    resource: Resource,
    context: Context,
    repository: Repository | None = None,
    artifact: Artifact | None = None,
    tag: TagChange | None = None,
    target_repository: str | None = None,
    retention: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole input document, version :data:`INPUT_VERSION`.

    Every key is present; facts that do not apply are ``null`` (``tag`` outside
    tagging, ``target`` outside promotion, ``retention`` outside retention) so
    policies never trip on a missing key.
    """
    if not action:
        raise PolicyInputError("action must be a non-empty string such as 'pull'")
    repo = repository or Repository(name=resource.repository, format=resource.format)
    return {
        "version": INPUT_VERSION,
        "action": action,
        "subject": subject_doc(subject),
        "resource": resource_doc(resource),
        "repository": repository_doc(repo),
        "artifact": artifact_doc(artifact or Artifact()),
        "tag": _tag_doc(tag),
        "target": None if target_repository is None else {"repository": target_repository},
        "retention": None if retention is None else dict(retention),
        "context": context_doc(context),
    }


def _tag_doc(tag: TagChange | None) -> dict[str, Any] | None:
    if tag is None:
        return None
    return {"name": tag.name, "current_digest": tag.current_digest}


def canonical_json(doc: Any) -> bytes:
    """RFC 8785 canonical JSON of ``doc``; :class:`PolicyInputError` if it is not JSON.

    Documents made of dicts with string keys, lists, strings, safe integers,
    booleans and nulls -- every document :func:`build_input` makes -- serialise
    identically under the standard library's C encoder with sorted keys, at a
    tenth of the cost of the pure-Python ``rfc8785`` encoder (see
    :func:`_standard_library_canonical` for how that is proven per document);
    anything else goes through ``rfc8785`` itself. The equivalence is tested
    against ``rfc8785`` on generated documents.
    """
    fast = _standard_library_canonical(doc)
    if fast is not None:
        return fast
    try:
        return rfc8785.dumps(doc)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, RecursionError) as error:
        raise PolicyInputError(f"policy input is not JSON: {error}") from error


class _NotPlain(Exception):
    """Internal: the text holds a value the C encoder may write differently from RFC 8785."""


def _reject_float(text: str) -> float:
    raise _NotPlain(text)


def _safe_int(text: str) -> int:
    value = int(text)
    if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
        return value
    raise _NotPlain(text)


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_READ_BACK = json.JSONDecoder(parse_float=_reject_float, parse_int=_safe_int).decode
# Python sorts keys by code point, RFC 8785 by UTF-16 code unit: the orders agree
# below U+D800, and lone surrogates only occur above it.
_HIGH_CHARACTERS = re.compile("[\ud800-\U0010ffff]")


def _standard_library_canonical(doc: Any) -> bytes | None:
    """The C encoder's text of ``doc`` when it is provably RFC 8785's, else None.

    Walking the document in Python to prove it plain cost more than encoding
    it (6 % of a manifest GET). The C encoder and decoder prove it instead:
    the text is read back with floats and unsafe integers refused, and what
    is read back must equal ``doc`` -- which fails for whatever the encoder
    coerced (integer keys, tuples, subclasses), leaving those to the slow path.
    """
    try:
        text = _ENCODER.encode(doc)
        if not text.isascii() and _HIGH_CHARACTERS.search(text):
            return None
        if _READ_BACK(text) != doc:
            return None
        return text.encode("utf-8")
    except (_NotPlain, TypeError, ValueError, RecursionError, UnicodeEncodeError):
        return None


def input_digest(doc: Any) -> str:
    """``"sha256:<hex>"`` over :func:`canonical_json`; raises :class:`PolicyInputError`."""
    return "sha256:" + hashlib.sha256(canonical_json(doc)).hexdigest()
