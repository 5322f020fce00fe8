"""Translate an action, its subject and its facts into the policy input document.

The document's shape is owned by :mod:`policies.inputs` (pure builders); this
module only maps the registry's types onto them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from policies import inputs as doc
from registry.auth.subject import Subject
from registry.governance.actions import Action, RequestContext
from registry.governance.facts import Facts


def policy_input(
    *, action: Action, subject: Subject, facts: Facts, context: RequestContext, now: datetime
) -> dict[str, Any]:
    resource = action.resource
    repository = facts.repository
    document = doc.build_input(
        action=action.verb,
        subject=doc.Subject(
            id=subject.id, kind=subject.kind, roles=subject.roles, teams=subject.teams
        ),
        resource=doc.Resource(
            repository=resource.repository,
            format=resource.format or repository["format"],
            name=resource.name,
            version=resource.version,
            digest=resource.digest,
        ),
        repository=doc.Repository(
            name=repository["name"],
            format=repository["format"],
            kind=repository["kind"],
            labels=repository["labels"],
        ),
        artifact=_artifact(facts.artifact),
        context=doc.Context(
            time=now,
            request_id=context.request_id,
            client=context.client,
            stage=action.stage,
        ),
        tag=action.tag,
        retention=action.retention,
    )
    package = facts.artifact.get("package")
    if package:
        # Package formats (PyPI, npm) read these from the package itself:
        # summary, license expression, dependencies, requires-python/engines, hashes.
        document["artifact"]["package"] = dict(package)
    return document


def _artifact(facts: dict[str, Any]) -> doc.Artifact:
    sbom = facts.get("sbom", {})
    findings = facts.get("vulnerabilities", {})
    scan = facts.get("scan", {})
    return doc.Artifact(
        size=int(facts.get("size", 0)),
        created_at=facts.get("created_at"),
        labels=facts.get("labels", {}),
        tags=facts.get("tags", ()),
        licenses=sbom.get("licenses", ()),
        purls=sbom.get("purls", ()),
        critical=int(findings.get("critical", 0)),
        high=int(findings.get("high", 0)),
        vulnerability_ids=findings.get("ids", ()),
        last_pulled_at=facts.get("last_pulled_at"),
        downloads=int(facts.get("downloads", 0)),
        provenance=facts.get("provenance", {}),
        medium=int(findings.get("medium", 0)),
        low=int(findings.get("low", 0)),
        unknown=int(findings.get("unknown", 0)),
        fixable_ids=findings.get("fixable", ()),
        scan_status=scan.get("status", "pending"),
        scan_reason=scan.get("reason"),
        components=int(scan.get("components", 0)),
    )
