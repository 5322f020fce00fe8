"""Domain actions: what a protocol adapter translates a wire request into."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from policies.inputs import TagChange
from registry.errors import ArbiterError

PUSH = "push"
PULL = "pull"
DELETE = "delete"
TAG = "tag"
PROMOTE = "promote"
RETAIN = "retain"

STAGE_REQUEST = "request"
STAGE_CONTENT = "content"


@dataclass(frozen=True)
class Resource:
    """The artifact an action is about; only ``repository`` is always known."""

    repository: str
    format: str = ""
    name: str | None = None
    version: str | None = None
    file: str | None = None
    digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        fields = {
            "repository": self.repository,
            "format": self.format,
            "name": self.name,
            "version": self.version,
            "file": self.file,
            "digest": self.digest,
        }
        return {key: value for key, value in fields.items() if value not in (None, "")}


@dataclass(frozen=True)
class Action:
    """One governed action.

    ``artifact`` carries facts only the adapter knows (the size and digest of
    staged bytes, tags it wants to set); the governance layer adds what the
    database knows. ``details`` go into the audit event as they are.
    ``tag`` is the tag a push or tag action points at ``resource.digest``
    (and where it points now), so the policy can keep immutable tags still.
    ``retention`` is what a retention run tells the policy (the rule, who
    references the artifact, which teams pulled it), so the policy may veto.
    """

    verb: str
    resource: Resource
    stage: str = STAGE_REQUEST
    artifact: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    tag: TagChange | None = None
    retention: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RequestContext:
    """Where an action came from, for the policy's ``context`` and the audit event."""

    request_id: str = ""
    client: str = ""
    remote: str = ""


@dataclass(frozen=True)
class Serving:
    """What serving an allowed read takes, known from the rows read before the decision.

    ``error`` says the read cannot be served (no such manifest or file): the
    allowed action is then audited as failed and the error raised.
    ``download`` is the version whose download counter the read bumps, in the
    transaction that records its event.
    """

    error: ArbiterError | None = None
    download: int | None = None
