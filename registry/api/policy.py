"""The policy in force: its revision, and reloading it without a restart."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from policies import PolicyLoadError
from registry.errors import Unprocessable
from registry.governance.policy_changes import reload_and_record
from registry.services import Services
from registry.web.deps import AdminDep, ServicesDep, UserDep

router = APIRouter(prefix="/policy", tags=["policy"])


def policy_state(services: Services) -> dict[str, Any]:
    point = services.policy
    error = point.last_error
    return {
        "engine": point.name,
        "revision": point.revision,
        "policy_dir": str(point.policy_dir),
        "last_error": error.diagnostics() if error is not None else None,
    }


@router.get("")
def get_policy(services: ServicesDep, _user: UserDep) -> dict[str, Any]:
    return policy_state(services)


@router.post("/reload")
async def reload(services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    """Put the policy directory's current revision in force, or say why not."""
    before = services.policy.revision
    try:
        await run_in_threadpool(reload_and_record, services.governor, services.policy, admin)
    except PolicyLoadError as error:
        raise Unprocessable(
            f"policy refused; revision {before} stays in force:\n{error.diagnostics()}"
        ) from error
    return {**policy_state(services), "previous_revision": before}
