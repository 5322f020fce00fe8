"""The management REST API under ``/api/v1``."""

from fastapi import APIRouter

from registry.api import (
    artifacts,
    audit,
    findings,
    identities,
    lineage,
    policy,
    repositories,
    retention,
    sbom,
)

router = APIRouter(prefix="/api/v1")
router.include_router(repositories.router)
router.include_router(identities.router)
router.include_router(policy.router)
router.include_router(audit.router)
router.include_router(lineage.router)
router.include_router(artifacts.router)
router.include_router(retention.router)
router.include_router(sbom.router)
router.include_router(findings.router)

__all__ = ["router"]
