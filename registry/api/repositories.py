"""Repositories: create, list, show, update labels, delete."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from registry.db.models import Package, Repository
from registry.errors import Conflict, NotFound
from registry.web.deps import AdminDep, ServicesDep, UserDep

FORMATS = ("generic", "oci", "pypi", "npm", "maven", "helm")
NAME = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")

router = APIRouter(prefix="/repositories", tags=["repositories"])


class RepositoryIn(BaseModel):
    name: str = Field(description="Lower case letters, digits, '.', '_' and '-'.")
    format: Literal["generic", "oci", "pypi", "npm", "maven", "helm"]
    kind: Literal["hosted"] = "hosted"
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if not NAME.match(name):
            raise ValueError("use 1-64 lower case letters, digits, '.', '_' or '-'")
        return name


class RepositoryPatch(BaseModel):
    description: str | None = None
    labels: dict[str, str] | None = None


class RepositoryOut(BaseModel):
    name: str
    format: str
    kind: str
    description: str
    labels: dict[str, Any]
    created_at: datetime


def _out(repository: Repository) -> RepositoryOut:
    return RepositoryOut.model_validate(repository, from_attributes=True)


def _get(session: Session, name: str) -> Repository:
    repository = session.exec(select(Repository).where(Repository.name == name)).first()
    if repository is None:
        raise NotFound(f"repository {name!r} not found")
    return repository


@router.post("", status_code=201)
def create_repository(body: RepositoryIn, services: ServicesDep, admin: AdminDep) -> RepositoryOut:
    def apply(session: Session) -> Repository:
        repository = Repository(**body.model_dump())
        session.add(repository)
        session.flush()
        return repository

    try:
        created = services.governor.record(
            admin, "repository.create", {"repository": body.name}, apply, body.model_dump()
        )
    except IntegrityError as error:
        raise Conflict(f"repository {body.name!r} already exists") from error
    return _out(created)


@router.get("")
def list_repositories(services: ServicesDep, _user: UserDep) -> list[RepositoryOut]:
    with services.db.reader() as session:
        rows = session.exec(select(Repository).order_by(col(Repository.name))).all()
        return [_out(row) for row in rows]


@router.get("/{name}")
def get_repository(name: str, services: ServicesDep, _user: UserDep) -> RepositoryOut:
    with services.db.reader() as session:
        return _out(_get(session, name))


@router.patch("/{name}")
def update_repository(
    name: str, body: RepositoryPatch, services: ServicesDep, admin: AdminDep
) -> RepositoryOut:
    changes = body.model_dump(exclude_none=True)

    def apply(session: Session) -> Repository:
        repository = _get(session, name)
        for key, value in changes.items():
            setattr(repository, key, value)
        session.add(repository)
        session.flush()
        return repository

    return _out(
        services.governor.record(admin, "repository.update", {"repository": name}, apply, changes)
    )


@router.delete("/{name}", status_code=204)
def delete_repository(name: str, services: ServicesDep, admin: AdminDep) -> Response:
    """Only an empty repository may be deleted: artifacts leave through governed deletes."""

    def apply(session: Session) -> None:
        repository = _get(session, name)
        if session.exec(select(Package.id).where(Package.repository_id == repository.id)).first():
            raise Conflict(f"repository {name!r} is not empty; delete its artifacts first")
        session.delete(repository)

    services.governor.record(admin, "repository.delete", {"repository": name}, apply)
    return Response(status_code=204)
