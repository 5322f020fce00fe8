"""An SBOM uploaded by the artifact's producer, governed as a push of that artifact.

The steps, each a guard:

1. the version exists (an SBOM describes something already pushed);
2. request-stage push decision (may this subject write here at all?);
3. the document is CycloneDX (JSON or XML) valid against its schema, else
   :class:`~registry.supplychain.errors.SbomInvalid` (422, with the schema's
   error);
4. its components are matched against the vulnerability data;
5. content-stage push decision on the version's facts united with what the
   producer declares (licenses, purls, findings): a producer SBOM that
   reveals a denied license is refused like content that has one;
6. on allow, the document (content-addressed blob), its row beside ours,
   the new findings and the version's summary commit with the push event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from registry.auth.subject import Subject
from registry.blobs import BlobStore
from registry.errors import NotFound
from registry.governance import PUSH, STAGE_CONTENT, Action, Governor, RequestContext, Resource
from registry.governance.blob_rows import commit_blob
from registry.governance.facts import find_repository
from registry.supplychain import documents, scan, storage
from registry.supplychain.models import PRODUCER, SbomDocument
from registry.supplychain.sbom import cyclonedx
from registry.supplychain.summary import Findings, SbomSummary, facts
from registry.supplychain.vulndb import revision

FILES = {documents.JSON: "producer.cdx.json", documents.XML: "producer.cdx.xml"}
MEDIA_TYPES = {documents.JSON: cyclonedx.JSON_MEDIA_TYPE, documents.XML: cyclonedx.XML_MEDIA_TYPE}


async def upload(
    governor: Governor,
    blobs: BlobStore,
    subject: Subject,
    context: RequestContext,
    *,
    repository: str,
    name: str,
    version: str,
    body: bytes,
    content_type: str,
) -> dict[str, Any]:
    """Validate, decide and keep a producer SBOM; returns what was stored."""
    repo_format, version_id = await run_in_threadpool(_version, governor, repository, name, version)
    resource = Resource(repository=repository, format=repo_format, name=name, version=version)
    request = Action(verb=PUSH, resource=resource, artifact={"size": len(body)})
    await run_in_threadpool(governor.govern, subject, request, context)
    kind, spec_version, declared = documents.parse_upload(body, content_type)
    file = FILES[kind]
    staged = await blobs.stage(_once(body))
    try:
        matches, current, stored = await run_in_threadpool(_matches, governor, version_id, declared)
        content = Action(
            verb=PUSH,
            resource=Resource(
                repository=repository,
                format=repo_format,
                name=name,
                version=version,
                file=file,
                digest=staged.digest,
            ),
            stage=STAGE_CONTENT,
            artifact=facts(
                SbomSummary.union([stored, declared]),
                Findings.of(matches),
                status=str(current["status"]),
                reason=current["reason"],
            ),
            details={
                "sbom": {
                    "source": PRODUCER,
                    "format": "CycloneDX",
                    "spec_version": spec_version,
                    "components": declared.components,
                    "licenses": list(declared.licenses),
                }
            },
        )

        def apply(session: Session) -> dict[str, Any]:
            ref = commit_blob(session, blobs, staged, MEDIA_TYPES[kind])
            storage.save_document(
                session,
                SbomDocument(
                    version_id=version_id,
                    file=file,
                    source=PRODUCER,
                    blob_digest=ref.digest,
                    media_type=MEDIA_TYPES[kind],
                    spec_version=spec_version,
                    components=declared.components,
                    summary=declared.to_json(),
                    created_by=subject.id,
                ),
            )
            new = storage.add_findings(session, version_id, matches)
            storage.refresh_summary(session, version_id, str(current["revision"]))
            return {
                "repository": repository,
                "name": name,
                "version": version,
                "source": PRODUCER,
                "digest": ref.digest,
                "spec_version": spec_version,
                "components": declared.components,
                "licenses": list(declared.licenses),
                "new_findings": sorted({m.advisory_id for m in new}),
            }

        result = await run_in_threadpool(governor.govern, subject, content, context, apply)
    finally:
        blobs.discard(staged)
    if result is None:  # pragma: no cover - govern returns what apply returned
        raise RuntimeError("the governed SBOM upload returned nothing")
    return result


def _version(governor: Governor, repository: str, name: str, version: str) -> tuple[str, int]:
    with governor.db.reader() as session:
        repo_format = find_repository(session, repository).format
        found = storage.version_id(session, repository, name, version)
    if found is None:
        raise NotFound(
            f"version {name}/{version} not found in {repository}; push the artifact first"
        )
    return repo_format, found


def _matches(
    governor: Governor, version_id: int, declared: SbomSummary
) -> tuple[list[Any], dict[str, Any], SbomSummary]:
    """Findings of the version and of the declared components; its scan and SBOM summary."""
    with governor.db.reader() as session:
        conn = session.connection()
        summary = storage.summary(session, version_id)
        existing = [storage.as_match(f) for f in storage.findings(session, version_id)]
        new = scan.match_purls(conn, list(declared.purls))
        current = {
            "status": summary.status if summary else "pending",
            "reason": summary.reason if summary else None,
            "revision": summary.vulndb_revision if summary else revision.current(conn),
        }
        stored = SbomSummary(
            licenses=tuple(summary.licenses) if summary else (),
            purls=tuple(summary.purls) if summary else (),
        )
    return [*existing, *new], current, stored


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
