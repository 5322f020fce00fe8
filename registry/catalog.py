"""Packages and versions: the rows every format's records share.

Formats keep their own rules (what a version means, which files it holds);
finding a repository's package, creating it on first push and finding one of
its versions is the same for all of them.
"""

from __future__ import annotations

from sqlmodel import Session, select

from registry.db.models import Package, Version
from registry.errors import BadRequest
from registry.governance.facts import find_repository


def package_in(
    session: Session,
    repository: str,
    name: str,
    *,
    create: bool,
    fmt: str | None = None,
    fmt_label: str = "",
) -> Package | None:
    """The package ``name`` of ``repository``; created when missing and ``create``.

    With ``fmt``, a repository of another format is refused (an npm publish
    must not land in a Python repository).
    """
    repo = find_repository(session, repository)
    if fmt is not None and repo.format != fmt:
        what = fmt_label or fmt
        raise BadRequest(f"repository {repository!r} holds {repo.format} artifacts, not {what}")
    package = session.exec(
        select(Package).where(Package.repository_id == repo.id, Package.name == name)
    ).first()
    if package is None and create:
        package = Package(repository_id=repo.id or 0, name=name)
        session.add(package)
        session.flush()
    return package


def version_of(session: Session, package: Package, version: str) -> Version | None:
    return session.exec(
        select(Version).where(Version.package_id == package.id, Version.version == version)
    ).first()
