"""Assemble the policy input document from an action, its subject and its facts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from registry.auth.subject import Subject
from registry.governance.actions import Action, RequestContext
from registry.governance.facts import Facts

ARTIFACT_DEFAULTS: dict[str, Any] = {
    "size": 0,
    "created_at": None,
    "labels": {},
    "tags": [],
    "sbom": {"licenses": [], "purls": []},
    "vulnerabilities": {"critical": 0, "high": 0, "ids": []},
    "last_pulled_at": None,
    "downloads": 0,
    "provenance": {},
}


def policy_input(
    *, action: Action, subject: Subject, facts: Facts, context: RequestContext, now: datetime
) -> dict[str, Any]:
    resource = action.resource
    return {
        "version": 1,
        "action": action.verb,
        "subject": subject.to_policy(),
        "resource": {
            "repository": resource.repository,
            "format": resource.format or facts.repository["format"],
            "name": resource.name,
            "version": resource.version,
            "digest": resource.digest,
        },
        "repository": facts.repository,
        "artifact": {**ARTIFACT_DEFAULTS, **facts.artifact},
        "context": {
            "time": now.isoformat().replace("+00:00", "Z"),
            "request_id": context.request_id,
            "client": context.client,
            "stage": action.stage,
        },
    }
