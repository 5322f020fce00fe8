"""Changes to published packages: dist-tags, deprecations and unpublishing, each governed.

npm changes a package by sending it back: ``npm deprecate`` PUTs the
packument with ``deprecated`` set on some versions, ``npm unpublish
pkg@1.0.0`` PUTs it without that version (and moves ``latest``), then
DELETEs the tarball; ``npm dist-tag`` uses its own endpoints. Each
difference between what is stored and what was sent becomes one governed
action, so every deprecation, tag move and deletion is decided, audited and
shows in the version's lineage:

==============================  ========  ==============================================
change                          verb      details
==============================  ========  ==============================================
a dist-tag set or moved         ``tag``   ``tag``, ``previous_digest`` when it moved
a dist-tag removed              ``tag``   ``tag``, ``removed``
a version (un)deprecated        ``tag``   ``tag: deprecated``, ``reason`` (or ``removed``)
a version removed (unpublish)   ``delete``  ``reason: unpublish``
==============================  ========  ==============================================
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from policies.inputs import TagChange
from registry.auth import Subject
from registry.errors import NotFound
from registry.formats.npm import lookups, records
from registry.formats.npm.lookups import FORMAT, PackageState
from registry.formats.npm.names import check_tag, check_version
from registry.governance import DELETE, TAG, Action, RequestContext, Resource
from registry.packages import PackageInvalid
from registry.services import Services


async def current_state(services: Services, repo: str, name: str) -> PackageState:
    def read() -> PackageState | None:
        with services.db.read_engine.connect() as conn:
            return lookups.package(conn, repo, name)

    state = await run_in_threadpool(read)
    if state is None:
        raise NotFound(f"{name} is not in this registry")
    return state


def _digest(state: PackageState, version: str | None) -> str | None:
    row = state.version(version) if version else None
    return row.tarball.digest if row is not None and row.tarball is not None else None


def _resource(repo: str, name: str, version: str, state: PackageState) -> Resource:
    """A version of the package, with its tarball's digest."""
    return Resource(
        repository=repo, format=FORMAT, name=name, version=version, digest=_digest(state, version)
    )


async def _govern(
    services: Services,
    subject: Subject,
    context: RequestContext,
    action: Action,
    apply: Any,
) -> None:
    await run_in_threadpool(services.governor.govern, subject, action, context, apply)


async def move_tag(
    repo: str,
    name: str,
    tag: str,
    version: str,
    services: Services,
    subject: Subject,
    context: RequestContext,
    state: PackageState | None = None,
) -> None:
    """Point ``tag`` at ``version``; a no-op when it already does."""
    check_tag(tag)
    check_version(version)
    state = state or await current_state(services, repo, name)
    if state.version(version) is None:
        raise NotFound(f"{name}@{version} is not in this registry; publish it first")
    previous = state.tags.get(tag)
    if previous == version:
        return
    details: dict[str, Any] = {"tag": tag}
    previous_digest = _digest(state, previous)
    if previous is not None:
        details.update(previous_version=previous, previous_digest=previous_digest)
    action = Action(
        verb=TAG,
        resource=_resource(repo, name, version, state),
        tag=TagChange(name=tag, current_digest=previous_digest),
        details=details,
    )

    def apply(session: Session) -> None:
        records.set_tag(session, repo, name, tag, version)

    await _govern(services, subject, context, action, apply)
    state.tags[tag] = version


async def remove_tag(
    repo: str,
    name: str,
    tag: str,
    services: Services,
    subject: Subject,
    context: RequestContext,
    state: PackageState | None = None,
) -> None:
    state = state or await current_state(services, repo, name)
    version = state.tags.get(tag)
    if version is None:
        raise NotFound(f"{name} has no dist-tag {tag}")
    if tag == "latest":
        raise PackageInvalid("the latest dist-tag cannot be removed; move it instead")
    digest = _digest(state, version)
    action = Action(
        verb=TAG,
        resource=Resource(repository=repo, format=FORMAT, name=name, version=version, digest=None),
        tag=TagChange(name=tag, current_digest=digest),
        details={"tag": tag, "removed": True},
    )

    def apply(session: Session) -> None:
        records.remove_tag(session, repo, name, tag)

    await _govern(services, subject, context, action, apply)
    del state.tags[tag]


async def deprecate(
    repo: str,
    name: str,
    version: str,
    message: str | None,
    services: Services,
    subject: Subject,
    context: RequestContext,
    state: PackageState,
) -> None:
    details: dict[str, Any] = {"tag": "deprecated"}
    if message:
        details["reason"] = message
    else:
        details["removed"] = True
    action = Action(
        verb=TAG,
        resource=_resource(repo, name, version, state),
        tag=TagChange(name="deprecated"),
        details=details,
    )

    def apply(session: Session) -> None:
        records.set_deprecated(session, repo, name, version, message or None)

    await _govern(services, subject, context, action, apply)


async def unpublish(
    repo: str,
    name: str,
    version: str,
    services: Services,
    subject: Subject,
    context: RequestContext,
    state: PackageState,
) -> None:
    """Delete one version (a governed delete); its tags go with it."""
    action = Action(
        verb=DELETE,
        resource=_resource(repo, name, version, state),
        details={"reason": "unpublish"},
    )

    def apply(session: Session) -> None:
        records.delete_version(session, repo, name, version)

    await _govern(services, subject, context, action, apply)
    state.versions = [v for v in state.versions if v.version != version]
    state.tags = {t: v for t, v in state.tags.items() if v != version}


async def apply_update(
    repo: str,
    name: str,
    document: dict[str, Any],
    services: Services,
    subject: Subject,
    context: RequestContext,
) -> None:
    """Turn a PUT packument without a tarball into governed changes, in a safe order.

    Removed versions first (their tags go with them), then deprecations,
    then dist-tags, so ``latest`` can move to the version that remains.
    """
    if document.get("name", name) != name:
        raise PackageInvalid(f"the document is about {document.get('name')!r}, not {name!r}")
    state = await current_state(services, repo, name)
    sent = document.get("versions")
    if not isinstance(sent, dict):
        raise PackageInvalid("the document has no 'versions' object")
    stored = {row.version: row for row in state.versions}
    unknown = sorted(set(sent) - set(stored))
    if unknown:
        raise PackageInvalid(
            f"versions {', '.join(unknown)} are not published; publish them with their tarball"
        )
    for version in sorted(set(stored) - set(sent)):
        await unpublish(repo, name, version, services, subject, context, state)
    for version, manifest in sent.items():
        wanted = manifest.get("deprecated") if isinstance(manifest, dict) else None
        current = stored[version].manifest.get("deprecated")
        if (wanted or None) != (current or None):
            if wanted is not None and not isinstance(wanted, str):
                raise PackageInvalid(f"versions[{version!r}].deprecated must be a string")
            await deprecate(repo, name, version, wanted, services, subject, context, state)
    tags = document.get("dist-tags")
    if isinstance(tags, dict):
        for tag, version in tags.items():
            if state.tags.get(tag) != version and isinstance(version, str):
                await move_tag(repo, name, tag, version, services, subject, context, state)
        for tag in sorted(set(state.tags) - set(tags)):
            if tag != "latest":
                await remove_tag(repo, name, tag, services, subject, context, state)
