"""Manifests: GET and HEAD (pull), PUT (push, then tag), DELETE (delete or untag).

A manifest PUT is decided twice, as every push: at stage ``request`` before
the body is read, and at stage ``content`` once the body is parsed, every
blob and child manifest it references is known to be in the image (else
MANIFEST_BLOB_UNKNOWN and nothing is stored) and, for a container image, its
layers were analysed (:mod:`registry.formats.oci.analysis`: SBOM, findings
and ``scan.status`` in ``input.artifact``). An allowed image's analysis is
then recorded and its SBOM attached as a referrer. A PUT by tag then moves
the tag as its own governed ``tag`` action, so tags and re-tags are events of
their own in the audit log and in lineage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from policies.inputs import TagChange
from registry.formats.oci import analysis, digests, lookups, records
from registry.formats.oci.bodies import manifest_body
from registry.formats.oci.call import Call
from registry.formats.oci.errors import OciError, manifest_unknown
from registry.formats.oci.lookups import ManifestHit
from registry.formats.oci.manifest import MAX_MANIFEST_SIZE, Manifest, parse
from registry.formats.oci.names import is_tag
from registry.governance import DELETE, PULL, PUSH, STAGE_CONTENT, TAG, Action, Serving
from registry.governance.blob_rows import commit_blob
from registry.supplychain.hook import LayerBlob, StagedAnalysis
from registry.web.hops import governed


def _reference(call: Call) -> str:
    """The tag or digest of the request; a malformed one can name no manifest."""
    reference = call.target.arg
    if digests.is_digest(reference):
        return digests.parse(reference)
    if not is_tag(reference):
        raise OciError(
            "MANIFEST_INVALID",
            f"{reference!r} is neither a tag ([a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}) nor a digest",
        )
    return reference


def _headers(row: ManifestHit) -> dict[str, str]:
    headers = {
        "Content-Type": row.media_type,
        "Docker-Content-Digest": row.digest,
        "Content-Length": str(row.size),
        "ETag": f'"{row.digest}"',
    }
    if row.subject_digest:
        headers["OCI-Subject"] = row.subject_digest
    return headers


async def get(call: Call) -> Response:
    return await _pull(call, head=False)


async def head(call: Call) -> Response:
    return await _pull(call, head=True)


async def _pull(call: Call, *, head: bool) -> Response:
    """Resolve, decide and record (the hottest path: see :mod:`registry.web.hops`), then read."""
    reference = _reference(call)
    target = call.target

    details: dict[str, Any] = {"reference": reference}
    if head:
        details["head"] = True

    def action(row: ManifestHit | None) -> Action:
        digest = row.digest if row is not None else None
        resource = call.resource(version=digest, digest=digest)
        return Action(verb=PULL, resource=resource, details=details)

    def serving(row: ManifestHit | None) -> Serving:
        if row is None:
            return Serving(error=manifest_unknown(reference))
        return Serving(download=None if head else row.version_id)

    row = await governed(
        call.services,
        lambda: call.start_read(
            lambda conn: lookups.manifest(conn, target.repository, target.image, reference),
            action,
            serving,
        ),
    )
    assert row is not None
    if head:
        return Response(status_code=200, headers=_headers(row))
    body = manifest_body(call.services.blobs, row.storage_digest)
    return Response(content=body, status_code=200, headers=_headers(row))


async def _body(call: Call) -> bytes:
    """The request body, refused as soon as it passes the 4 MiB manifest limit."""
    declared = call.request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_MANIFEST_SIZE:
        raise _too_large()
    received = bytearray()
    async for chunk in call.request.stream():
        received += chunk
        if len(received) > MAX_MANIFEST_SIZE:
            raise _too_large()
    return bytes(received)


def _too_large() -> OciError:
    return OciError(
        "MANIFEST_INVALID",
        f"manifest invalid: larger than {MAX_MANIFEST_SIZE} bytes (4 MiB), the limit the "
        "distribution spec lets registries set; split it or move data into blobs",
        status=413,
    )


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def put(call: Call) -> Response:
    reference = _reference(call)
    target = call.target
    by_digest = digests.is_digest(reference)
    new_tags = _tag_params(call) if by_digest else [reference]
    await call.govern(Action(verb=PUSH, resource=call.resource(), details={"reference": reference}))
    body = await _body(call)
    algorithm = digests.algorithm_of(reference) if by_digest else digests.SHA256
    digest = digests.compute(body, algorithm)
    if by_digest and digest != reference:
        raise OciError(
            "DIGEST_INVALID",
            f"the manifest hashes to {digest}, not {reference}; push it by its own digest",
            detail={"expected": reference, "actual": digest},
        )
    manifest = parse(body, call.request.headers.get("content-type"))
    facts = await call.read(lambda session: _pre_push(session, call, manifest, digest, new_tags))
    repo_id, currents, source, layers = facts

    staged = await call.services.blobs.stage(_one_chunk(body))
    details: dict[str, Any] = {
        "reference": reference,
        "media_type": manifest.media_type,
        "size": len(body),
        **_lineage(manifest),
    }
    if source is not None:
        details["source"] = source
    action = Action(
        verb=PUSH,
        resource=call.resource(version=digest, digest=digest),
        stage=STAGE_CONTENT,
        artifact={"size": manifest.content_size(len(body))},
        details=details,
        tag=TagChange(new_tags[0], currents[new_tags[0]]) if new_tags else None,
    )

    def apply(session: Session) -> None:
        ref = commit_blob(session, call.services.blobs, staged, manifest.media_type)
        repository = records.oci_repository(session, target.repository)
        records.store_manifest(
            session, repository, target.image, digest, ref, manifest, created_by=call.subject.id
        )

    found: StagedAnalysis | None = None
    try:
        if layers is not None:  # an image: SBOM, findings and scan.status for the decision
            found = await analysis.analyse(call, manifest, digest, len(body), layers)
        if found is not None:
            action = dataclasses.replace(action, artifact={**action.artifact, **found.facts})
        await call.govern(action, apply)
        if found is not None:  # SBOM, findings and the referrer, with an ``analyse`` event
            governor = call.services.governor
            await run_in_threadpool(found.record, governor, call.subject, action.resource)
    finally:
        call.services.blobs.discard(staged)
        if found is not None:
            found.discard()
    for tag in new_tags:
        if currents[tag] != digest:
            await _move_tag(call, repo_id, tag, digest, currents[tag])
    headers = {"Location": call.location("manifests", digest), "Docker-Content-Digest": digest}
    if by_digest and new_tags:
        headers["OCI-Tag"] = ", ".join(new_tags)
    if manifest.subject is not None:
        headers["OCI-Subject"] = manifest.subject.digest
    return Response(status_code=201, headers=headers)


def _tag_params(call: Call) -> list[str]:
    """``?tag=`` parameters of a push by digest: tags to set in the same request."""
    found = list(dict.fromkeys(call.request.query_params.getlist("tag")))
    for tag in found:
        if not is_tag(tag):
            raise OciError("MANIFEST_INVALID", f"tag parameter {tag!r} is not a valid tag")
    return found


def _pre_push(
    session: Session, call: Call, manifest: Manifest, digest: str, new_tags: list[str]
) -> tuple[int, dict[str, str | None], dict[str, Any] | None, list[LayerBlob] | None]:
    """Guard clauses before the content decision: every reference must be in the image.

    Also what the push needs to know: where its tags point now, where else
    the manifest lives, and the layers to analyse (``None``: no analysis).
    """
    target = call.target
    repo_id = records.repository_id(records.oci_repository(session, target.repository))
    missing = records.missing_references(session, repo_id, target.image, manifest)
    if missing:
        names = ", ".join(f"{m.kind} {m.digest}" for m in missing)
        raise OciError(
            "MANIFEST_BLOB_UNKNOWN",
            f"the manifest references {names}, not in {target.name}; push (or mount) them "
            "first, then the manifest",
            detail=[{"digest": m.digest, "kind": m.kind} for m in missing],
        )
    currents = {tag: records.tag_digest(session, repo_id, target.image, tag) for tag in new_tags}
    source = records.copies_of(session, digest, repo_id, target.image)
    layers = analysis.plan(session, repo_id, target.image, manifest, digest)
    return repo_id, currents, source, layers


def _lineage(manifest: Manifest) -> dict[str, Any]:
    """What the manifest links to, for the audit event (and so for lineage)."""
    links: dict[str, Any] = {}
    if manifest.config is not None:
        links["config"] = manifest.config.digest
    if manifest.layers:
        links["layers"] = [layer.digest for layer in manifest.layers]
    if manifest.manifests:
        links["manifests"] = [child.digest for child in manifest.manifests]
    if manifest.subject is not None:
        links["subject"] = manifest.subject.digest
    if manifest.referrer_type():
        links["artifact_type"] = manifest.referrer_type()
    return links


async def _move_tag(call: Call, repo_id: int, tag: str, digest: str, current: str | None) -> None:
    details: dict[str, Any] = {"tag": tag}
    if current is not None:
        details["previous_digest"] = current
    action = Action(
        verb=TAG,
        resource=call.resource(version=digest, digest=digest),
        details=details,
        tag=TagChange(tag, current),
    )

    def apply(session: Session) -> None:
        records.set_tag(session, repo_id, call.target.image, tag, digest)

    await call.govern(action, apply)


async def delete(call: Call) -> Response:
    """By digest: delete the manifest (and its tags). By tag: remove only the tag."""
    reference = _reference(call)
    target = call.target

    def lookup(session: Session) -> tuple[int, str | None]:
        repo_id = records.repository_id(records.oci_repository(session, target.repository))
        if digests.is_digest(reference):
            return repo_id, reference
        return repo_id, records.tag_digest(session, repo_id, target.image, reference)

    repo_id, digest = await call.read(lookup)
    if digests.is_digest(reference):
        action = Action(verb=DELETE, resource=call.resource(version=digest, digest=digest))

        def remove(session: Session) -> None:
            records.delete_manifest(session, repo_id, target.image, reference)

        await call.govern(action, remove)
    else:
        action = Action(
            verb=DELETE,
            resource=call.resource(version=digest, digest=digest),
            details={"tag": reference, "reason": "tag removed; the manifest stays"},
            tag=TagChange(reference, digest),
        )

        def untag(session: Session) -> None:
            records.delete_tag(session, repo_id, target.image, reference)

        await call.govern(action, untag)
    return Response(status_code=202)
