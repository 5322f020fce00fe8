"""Labels on artifact versions: quarantine, legal hold, release.

The starter policies read these labels (a quarantined version cannot be
pulled, one on legal hold cannot be deleted or retained), so setting them is
itself recorded: each change is a ``label`` event on the artifact version,
visible in its lineage as quarantined / released.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlmodel import Session, select

from registry.db.models import Label
from registry.errors import BadRequest, Forbidden, NotFound
from registry.governance.facts import find_repository, find_version
from registry.web.deps import ServicesDep, UserDep

router = APIRouter(prefix="/artifacts", tags=["artifacts"])
LABEL_ROLES = ("maintainer", "admin")


class LabelChange(BaseModel):
    labels: dict[str, str | None] = Field(
        description="Labels to set; a null value removes the label.", min_length=1
    )


def _split(path: str) -> tuple[str, str]:
    name, _, version = path.strip("/").rpartition("/")
    if not name or not version:
        raise BadRequest("use /api/v1/artifacts/REPOSITORY/NAME/VERSION/labels")
    return name, version


def _labels(session: Session, version_id: int) -> dict[str, str]:
    rows = session.exec(select(Label).where(Label.version_id == version_id)).all()
    return {row.key: row.value for row in rows}


@router.get("/{repository}/{path:path}/labels")
def get_labels(repository: str, path: str, services: ServicesDep, _user: UserDep) -> dict[str, str]:
    name, version = _split(path)
    with services.db.reader() as session:
        found = find_version(session, find_repository(session, repository), name, version)
        if found is None or found.id is None:
            raise NotFound(f"version {name}/{version} not found in {repository}")
        return _labels(session, found.id)


@router.patch("/{repository}/{path:path}/labels")
def change_labels(
    repository: str, path: str, body: LabelChange, services: ServicesDep, user: UserDep
) -> dict[str, str]:
    """Set or remove labels; maintainers of the repository and administrators may."""
    if not any(user.has_role(role, repository) for role in LABEL_ROLES):
        raise Forbidden(f"{user.id} may not label artifacts in {repository}; ask a maintainer")
    name, version = _split(path)

    def apply(session: Session) -> dict[str, str]:
        found = find_version(session, find_repository(session, repository), name, version)
        if found is None or found.id is None:
            raise NotFound(f"version {name}/{version} not found in {repository}")
        current = {
            row.key: row for row in session.exec(select(Label).where(Label.version_id == found.id))
        }
        for key, value in body.labels.items():
            if value is None:
                if key in current:
                    session.delete(current[key])
            elif key in current:
                current[key].value = value
                session.add(current[key])
            else:
                session.add(Label(version_id=found.id, key=key, value=value))
        session.flush()
        return _labels(session, found.id)

    resource: dict[str, Any] = {"repository": repository, "name": name, "version": version}
    return services.governor.record(user, "label", resource, apply, {"labels": body.labels})
