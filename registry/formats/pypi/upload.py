"""The legacy upload API (``POST /pypi/{repo}/``) twine and ``uv publish`` use.

An upload reads as guard clauses, each failure one sentence the client prints:

1. the body is a multipart form whose ``:action`` is ``file_upload``;
2. its fields up to the file name the project; the file name is a wheel or
   an sdist whose name and version agree with the ``name``/``version`` fields;
3. request-stage decision (before any byte of the file is accepted);
4. the file streams into staging, hashed on the way (sha256, md5, blake2b);
5. the digests the client stated match the bytes;
6. the staged file is inspected (bounded) and its own metadata agrees with
   the file name and the form;
7. content-stage decision on the package's facts (licenses, dependencies,
   requires-python, hashes), then the commit, rows and audit event in one
   transaction; a file name is never reused for other bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from packaging.version import InvalidVersion, Version
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from registry.auth import Subject
from registry.blobs import BlobRef, BlobStore, StagedBlob
from registry.errors import ArbiterError, BadRequest, PayloadTooLarge
from registry.formats.pypi import records
from registry.formats.pypi.distributions import Inspected, inspect
from registry.formats.pypi.form import UploadForm
from registry.formats.pypi.lookups import FORMAT
from registry.formats.pypi.names import DistributionFile, normalize, parse_filename
from registry.governance import PUSH, STAGE_CONTENT, Action, RequestContext, Resource
from registry.packages import MultiHasher, PackageInvalid
from registry.packages.limits import archive_limits
from registry.packages.publish import Staged, commit_staged, decide_request, discard
from registry.services import Services

DIGEST_FIELDS = {"sha256_digest": "sha256", "md5_digest": "md5", "blake2_256_digest": "blake2b_256"}


def _check_form(form: UploadForm) -> None:
    action = form.field(":action")
    if action != "file_upload":
        raise BadRequest(
            f"unsupported :action {action!r}: this endpoint accepts file_upload "
            "(the legacy upload API); register and submit are not needed"
        )
    protocol = form.field("protocol_version")
    if protocol not in (None, "1"):
        raise BadRequest(f"unsupported protocol_version {protocol!r}; use 1")


def _distribution(form: UploadForm) -> DistributionFile:
    """The file name's claims, checked against the form's name, version and filetype."""
    dist = parse_filename(form.filename or "")
    name, version, filetype = form.field("name"), form.field("version"), form.field("filetype")
    if name is not None and normalize(name) != dist.name:
        raise PackageInvalid(
            f"the file name {dist.filename} does not match the project name {name!r}"
        )
    if version is not None and _form_version(version) != dist.version:
        raise PackageInvalid(
            f"the file name {dist.filename} does not match the version {version!r}"
        )
    if filetype is not None and filetype != dist.filetype:
        raise PackageInvalid(
            f"filetype {filetype!r} does not match {dist.filename} (a {dist.filetype})"
        )
    return dist


def _form_version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise PackageInvalid(f"{text!r} is not a valid version (PEP 440)") from None


def _check_digests(form: UploadForm, staged: StagedBlob, hasher: MultiHasher) -> dict[str, str]:
    """Every digest the client stated must be the file's; returns all three."""
    actual = {
        "sha256": staged.digest.removeprefix("sha256:"),
        "md5": hasher.hexdigest("md5"),
        "blake2b_256": hasher.hexdigest("blake2b_256"),
    }
    for field_name, algorithm in DIGEST_FIELDS.items():
        stated = form.field(field_name)
        if stated and stated.strip().lower() != actual[algorithm]:
            raise PackageInvalid(
                f"{field_name} {stated!r} does not match the uploaded file, whose {algorithm} "
                f"is {actual[algorithm]}; nothing was stored, upload the file again"
            )
    return actual


def _check_metadata(inspected: Inspected, dist: DistributionFile) -> None:
    metadata = inspected.metadata
    if normalize(metadata.name) != dist.name:
        raise PackageInvalid(
            f"the file's metadata names the project {metadata.name!r}, but the file is "
            f"{dist.filename}: rebuild it or rename it"
        )
    if Version(metadata.version) != dist.version:
        raise PackageInvalid(
            f"the file's metadata says version {metadata.version}, but the file is "
            f"{dist.filename}: rebuild it or rename it"
        )


def _inspect(blobs: BlobStore, staged: StagedBlob, dist: DistributionFile) -> Inspected:
    with blobs.open_staged(staged) as file:
        return inspect(file, dist, archive_limits())


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _python_version(dist: DistributionFile, form: UploadForm) -> str:
    if not dist.is_wheel:
        return "source"
    stated = form.field("pyversion")
    return stated or dist.filename.removesuffix(".whl").split("-")[-3]


def _facts(inspected: Inspected, dist: DistributionFile, hashes: dict[str, str]) -> dict[str, Any]:
    """``input.artifact.package``: what the package itself says."""
    metadata = inspected.metadata
    return {
        "name": metadata.name,
        "version": metadata.version,
        "summary": metadata.summary,
        "license": metadata.license_expression or metadata.license,
        "licenses": list(metadata.licenses),
        "dependencies": list(metadata.requires_dist),
        "requires_python": metadata.requires_python,
        "filename": dist.filename,
        "packagetype": dist.filetype,
        "hashes": hashes,
    }


async def upload(
    repo: str,
    request: Request,
    services: Services,
    subject: Subject,
    context: RequestContext,
) -> bool:
    """Run one upload; True when a new file was stored, False for an identical re-upload."""
    limit = services.settings.max_upload_size
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the upload is larger than the maximum upload size of {limit} bytes")
    form = UploadForm(request.stream(), request.headers.get("content-type", ""))
    try:
        return await _upload(repo, form, services, subject, context, declared)
    except ArbiterError:
        await form.drain()  # so the client reads the answer instead of a reset connection
        raise


async def _upload(
    repo: str,
    form: UploadForm,
    services: Services,
    subject: Subject,
    context: RequestContext,
    declared: str,
) -> bool:
    limit = services.settings.max_upload_size
    await form.read_fields()
    _check_form(form)
    dist = _distribution(form)
    version = str(dist.version)
    resource = Resource(
        repository=repo, format=FORMAT, name=dist.name, version=version, file=dist.filename
    )
    declared_size = int(declared) if declared.isdigit() else 0
    await decide_request(
        services.governor,
        subject,
        Action(verb=PUSH, resource=resource, artifact={"size": declared_size}),
        context,
    )
    hasher = MultiHasher(("md5", "blake2b_256"))
    staged = await services.blobs.stage(hasher.tee(form.content()), max_size=limit)
    media_type = records.WHEEL_MEDIA_TYPE if dist.is_wheel else records.SDIST_MEDIA_TYPE
    items = [Staged(staged, media_type)]
    try:
        _check_form(form)  # fields after the file count too
        dist = _distribution(form)
        hashes = _check_digests(form, staged, hasher)
        inspected = await run_in_threadpool(_inspect, services.blobs, staged, dist)
        _check_metadata(inspected, dist)
        if inspected.metadata_file is not None:
            metadata_blob = await services.blobs.stage(_one_chunk(inspected.metadata_file))
            items.append(Staged(metadata_blob, records.METADATA_MEDIA_TYPE))
        facts = _facts(inspected, dist, hashes)
        action = Action(
            verb=PUSH,
            resource=Resource(
                repository=repo,
                format=FORMAT,
                name=dist.name,
                version=version,
                file=dist.filename,
                digest=staged.digest,
            ),
            stage=STAGE_CONTENT,
            artifact={
                "size": staged.size,
                "sbom": {
                    "licenses": list(inspected.metadata.licenses),
                    "purls": inspected.metadata.purls(),
                },
                "package": facts,
            },
            details={"size": staged.size, "package": facts},
        )
        file_meta = {
            **hashes,
            "packagetype": dist.filetype,
            "python_version": _python_version(dist, form),
            "requires_python": inspected.metadata.requires_python,
            "comment": form.field("comment") or "",
        }

        def record(session: Session, refs: list[BlobRef]) -> bool:
            return records.add_distribution(
                session,
                repo,
                name=dist.name,
                version=version,
                filename=dist.filename,
                ref=refs[0],
                media_type=items[0].media_type,
                release_meta=inspected.metadata.release_meta(),
                file_meta=file_meta,
                metadata_ref=refs[1] if len(refs) > 1 else None,
                created_by=subject.id,
            )

        return await commit_staged(
            services.governor, services.blobs, subject, action, context, items, record
        )
    finally:
        discard(services.blobs, items)
