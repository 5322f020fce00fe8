"""The referrers API: ``GET /v2/<name>/referrers/<digest>[?artifactType=]``.

Lists, as an OCI index, the manifests in the image whose ``subject`` is the
digest, filtered by artifact type when asked (and then says so in
``OCI-Filters-Applied``). Manifests listed in a tag-schema fallback index (the
tag ``<alg>-<hex>`` that clients without referrers support push) are merged
in, so artifacts attached by older clients are found too. An unknown subject
has an empty list, not a 404, as the spec requires.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session
from starlette.responses import Response

from registry.db.oci_models import OciManifest
from registry.formats.oci import digests, records
from registry.formats.oci.call import Call
from registry.formats.oci.manifest import OCI_INDEX
from registry.governance import PULL, Action


def fallback_tag(digest: str) -> str:
    """The tag-schema name of a subject's referrers index: ``sha256:abc`` -> ``sha256-abc``."""
    return digest.replace(":", "-", 1)


def descriptor(row: OciManifest) -> dict[str, Any]:
    entry: dict[str, Any] = {"mediaType": row.media_type, "digest": row.digest, "size": row.size}
    if row.artifact_type:
        entry["artifactType"] = row.artifact_type
    if row.annotations:
        entry["annotations"] = dict(row.annotations)
    return entry


def _fallback_entries(call: Call, session: Session, repo_id: int, subject: str) -> list[Any]:
    index = records.resolve(session, repo_id, call.target.image, fallback_tag(subject))
    if index is None or index.media_type != OCI_INDEX:
        return []
    body = call.services.blobs.path_of(index.storage_digest).read_bytes()
    entries = json.loads(body).get("manifests", [])
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("digest"), str)]


async def list_referrers(call: Call) -> Response:
    subject = digests.parse(call.target.arg)
    artifact_type = call.request.query_params.get("artifactType")
    target = call.target

    def apply(session: Session) -> list[dict[str, Any]]:
        repo_id = records.repository_id(records.oci_repository(session, target.repository))
        found = [
            descriptor(row) for row in records.referrers(session, repo_id, target.image, subject)
        ]
        known = {entry["digest"] for entry in found}
        for entry in _fallback_entries(call, session, repo_id, subject):
            if entry["digest"] not in known:
                found.append(entry)
                known.add(entry["digest"])
        return found

    action = Action(
        verb=PULL,
        resource=call.resource(digest=subject),
        details={"listing": "referrers", "subject": subject},
    )
    manifests = await call.govern(action, apply) or []
    headers = {}
    if artifact_type:
        manifests = [m for m in manifests if m.get("artifactType") == artifact_type]
        headers["OCI-Filters-Applied"] = "artifactType"
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    return Response(json.dumps(index), media_type=OCI_INDEX, headers=headers)
