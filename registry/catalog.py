"""Packages and versions: the rows every format's records share.

Formats keep their own rules (what a version means, which files it holds);
finding a repository's package, creating it on first push and finding one of
its versions is the same for all of them.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from registry.db.models import Package, Version
from registry.errors import NotFound, WrongFormat
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
        raise WrongFormat(f"repository {repository!r} holds {repo.format} artifacts, not {what}")
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


def checked_repository(row: Any, repository: str, fmt: str, what: str) -> Any:
    """A format lookup's repository row (with a ``format`` column), or why there is none.

    NotFound names the command that creates it; WrongFormat says what it holds.
    """
    if row is None:
        raise NotFound(
            f"repository {repository!r} not found; "
            f"create it with 'arbiter repo create {repository} --format {fmt}'"
        )
    if row.format != fmt:
        raise WrongFormat(f"repository {repository!r} holds {row.format} artifacts, not {what}")
    return row
