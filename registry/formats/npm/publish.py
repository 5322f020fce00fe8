"""``npm publish``: one JSON document in, one governed push (and its dist-tags) out.

The upload reads as guard clauses, each failure an ``{"error"}`` npm prints:

1. the document names the package of the URL and exactly one new version,
   valid SemVer, with the tarball attached as ``{name}-{version}.tgz``;
2. request-stage decision (before the first byte of the tarball is kept);
3. the tarball streams, base64-decoded, into staging, hashed on the way;
4. its sha512/sha1 match ``dist.integrity``/``dist.shasum`` and its size the
   attachment's ``length``;
5. the staged tarball is inspected (bounded) and its package.json agrees with
   the published manifest;
6. content-stage decision on the package's facts, then commit, rows and
   audit event in one transaction;
7. each dist-tag of the document moves as a governed ``tag`` action of its own.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from registry.auth import Subject
from registry.blobs import BlobRef, BlobStore, StagedBlob
from registry.errors import ArbiterError, PayloadTooLarge
from registry.formats.npm import records
from registry.formats.npm.changes import apply_update, move_tag
from registry.formats.npm.document import PublishBody
from registry.formats.npm.lookups import FORMAT
from registry.formats.npm.names import check_tag, check_version, tarball_filename
from registry.formats.npm.tarball import PackageJson, check_manifest, inspect
from registry.governance import PUSH, STAGE_CONTENT, Action, RequestContext, Resource
from registry.packages import MultiHasher, PackageInvalid
from registry.packages.limits import archive_limits
from registry.packages.publish import Staged, commit_staged, decide_request, discard
from registry.services import Services

# Manifest keys the client sets for its own bookkeeping, not for readers.
_DROPPED_KEYS = frozenset({"_attachments", "_rev", "_revisions"})


def _one_version(document: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    """The version being published and its manifest, checked against the URL."""
    if document.get("name") != name:
        raise PackageInvalid(
            f"the document publishes {document.get('name')!r} to the URL of {name!r}"
        )
    versions = document.get("versions")
    if not isinstance(versions, dict) or len(versions) != 1:
        raise PackageInvalid("a publish carries exactly one version in 'versions'")
    version, manifest = next(iter(versions.items()))
    check_version(version)
    if not isinstance(manifest, dict) or manifest.get("version") != version:
        raise PackageInvalid(f"versions[{version!r}] must be a manifest of version {version}")
    if manifest.get("name") != name:
        raise PackageInvalid(f"versions[{version!r}] names {manifest.get('name')!r}, not {name}")
    return version, manifest


def _dist_tags(document: dict[str, Any], version: str) -> list[str]:
    tags = document.get("dist-tags") or {"latest": version}
    if not isinstance(tags, dict):
        raise PackageInvalid("'dist-tags' must be an object of tag: version")
    for tag, target in tags.items():
        check_tag(tag)
        if target != version:
            raise PackageInvalid(
                f"dist-tag {tag} points at {target!r}; a publish may only tag {version}"
            )
    return list(tags)


def _check_attachment(document: dict[str, Any], name: str, version: str, size: int) -> str:
    attachments = document.get("_attachments")
    if not isinstance(attachments, dict) or len(attachments) != 1:
        raise PackageInvalid("a publish attaches exactly one tarball in '_attachments'")
    attached, entry = next(iter(attachments.items()))
    expected = {f"{name}-{version}.tgz", tarball_filename(name, version)}
    if attached not in expected:
        raise PackageInvalid(f"the attachment is {attached!r}; expected {name}-{version}.tgz")
    length = entry.get("length") if isinstance(entry, dict) else None
    if length is not None and length != size:
        raise PackageInvalid(f"the attachment's length says {length} bytes but holds {size}")
    return tarball_filename(name, version)


def _check_integrity(manifest: dict[str, Any], hasher: MultiHasher) -> dict[str, str]:
    """``dist.integrity`` (SRI) and ``dist.shasum`` must describe the tarball received."""
    actual = {
        "integrity": f"sha512-{hasher.base64digest('sha512')}",
        "shasum": hasher.hexdigest("sha1"),
    }
    dist = manifest.get("dist") if isinstance(manifest.get("dist"), dict) else {}
    assert isinstance(dist, dict)
    integrity, shasum = dist.get("integrity"), dist.get("shasum")
    if not integrity and not shasum:
        raise PackageInvalid("the manifest's dist names neither integrity nor shasum")
    if shasum is not None and str(shasum).lower() != actual["shasum"]:
        raise PackageInvalid(
            f"dist.shasum {shasum} does not match the tarball (sha1 {actual['shasum']})"
        )
    if integrity:
        checked = 0
        for entry in str(integrity).split():
            algorithm, _, value = entry.partition("-")
            value = value.split("?", 1)[0]
            if algorithm not in ("sha512", "sha1"):
                continue
            try:
                stated = base64.b64decode(value, validate=True)
            except binascii.Error:
                raise PackageInvalid(f"dist.integrity {entry!r} is not base64") from None
            if base64.b64encode(stated).decode() != hasher.base64digest(algorithm):
                raise PackageInvalid(
                    f"dist.integrity does not match the tarball ({actual['integrity']})"
                )
            checked += 1
        if not checked:
            raise PackageInvalid("dist.integrity must include a sha512 hash (sha512-...)")
    return actual


def _inspect(blobs: BlobStore, staged: StagedBlob, name: str, version: str) -> PackageJson:
    with blobs.open_staged(staged) as file:
        return inspect(file, archive_limits(), name, version)


def _facts(package: PackageJson, version: str, hashes: dict[str, str]) -> dict[str, Any]:
    """``input.artifact.package``: what the tarball's package.json says."""
    document = package.document
    engines, description = document.get("engines"), document.get("description")
    return {
        "name": document.get("name"),
        "version": version,
        "summary": description if isinstance(description, str) else "",
        "license": package.license_expression or package.license,
        "licenses": package.licenses,
        "dependencies": package.dependencies(),
        "engines": engines if isinstance(engines, dict) else {},
        "hashes": hashes,
    }


def _stored_manifest(manifest: dict[str, Any], hashes: dict[str, str], user: str) -> dict[str, Any]:
    kept = {k: v for k, v in manifest.items() if k not in _DROPPED_KEYS}
    dist = dict(kept.get("dist") or {})
    dist.update(integrity=hashes["integrity"], shasum=hashes["shasum"])
    dist.pop("tarball", None)  # rebuilt from the request's base URL when served
    kept["dist"] = dist
    kept["_npmUser"] = {"name": user}
    return kept


async def put_package(
    repo: str,
    name: str,
    request: Request,
    services: Services,
    subject: Subject,
    context: RequestContext,
) -> dict[str, Any]:
    """A PUT of the package document: a publish, or a change of its metadata."""
    limit = services.settings.max_upload_size
    declared = request.headers.get("content-length", "")
    # base64 makes the body a third larger than the tarball it carries.
    if declared.isdigit() and int(declared) > limit * 4 // 3 + 16 * 1024 * 1024:
        raise PayloadTooLarge(
            f"the package is larger than the maximum upload size of {limit} bytes"
        )
    body = PublishBody(request.stream())
    try:
        await body.read_metadata()
        if not body.document.attachment_started:
            document = body.document.close()
            await apply_update(repo, name, document, services, subject, context)
            return {"ok": True, "id": name}
        return await _publish(repo, name, body, services, subject, context, declared)
    except ArbiterError:
        await body.drain()  # so npm reads the answer instead of a reset connection
        raise


async def _publish(
    repo: str,
    name: str,
    body: PublishBody,
    services: Services,
    subject: Subject,
    context: RequestContext,
    declared: str,
) -> dict[str, Any]:
    partial = body.document.partial
    if not isinstance(partial, dict):
        raise PackageInvalid("the publish document must be a JSON object")
    version, manifest = _one_version(partial, name)
    tags = _dist_tags(partial, version)
    resource = Resource(repository=repo, format=FORMAT, name=name, version=version)
    size = int(declared) * 3 // 4 if declared.isdigit() else 0
    await decide_request(
        services.governor,
        subject,
        Action(verb=PUSH, resource=resource, artifact={"size": size}),
        context,
    )
    hasher = MultiHasher(("sha1", "sha512"))
    limit = services.settings.max_upload_size
    staged = await services.blobs.stage(hasher.tee(body.tarball()), max_size=limit)
    items = [Staged(staged, records.TARBALL_MEDIA_TYPE)]
    try:
        document = body.document.close()
        filename = _check_attachment(document, name, version, staged.size)
        hashes = _check_integrity(manifest, hasher)
        package = await run_in_threadpool(_inspect, services.blobs, staged, name, version)
        check_manifest(manifest, package)
        hashes["sha256"] = staged.digest.removeprefix("sha256:")
        facts = _facts(package, version, hashes)
        action = Action(
            verb=PUSH,
            resource=Resource(
                repository=repo,
                format=FORMAT,
                name=name,
                version=version,
                file=filename,
                digest=staged.digest,
            ),
            stage=STAGE_CONTENT,
            artifact={
                "size": staged.size,
                "sbom": {"licenses": package.licenses, "purls": package.purls()},
                "package": facts,
            },
            details={"size": staged.size, "package": facts},
        )
        stored = _stored_manifest(manifest, hashes, subject.id)

        def record(session: Session, refs: list[BlobRef]) -> bool:
            records.add_version(
                session,
                repo,
                name=name,
                version=version,
                manifest=stored,
                filename=filename,
                ref=refs[0],
                file_meta={"integrity": hashes["integrity"], "shasum": hashes["shasum"]},
                created_by=subject.id,
            )
            return True

        await commit_staged(
            services.governor, services.blobs, subject, action, context, items, record
        )
    finally:
        discard(services.blobs, items)
    for tag in tags:
        await move_tag(repo, name, tag, version, services, subject, context)
    return {"ok": True, "id": name, "version": version}
