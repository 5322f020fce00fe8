"""The application factory: services in, ASGI app out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from registry import api
from registry.config import Settings
from registry.downloads import DownloadListener
from registry.formats import generic, npm, oci, pypi
from registry.formats.npm.front import NpmFrontDoor
from registry.formats.oci.front import OciFrontDoor
from registry.services import Services, build_services
from registry.web import errors
from registry.web.middleware import RequestContextMiddleware


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the app; ``services`` may be injected by tests (with a fake clock, say)."""
    services = services or build_services(settings or Settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        services.start()
        listener = None
        try:
            if services.downloads is not None:
                listener = DownloadListener(
                    services.downloads, services.blobs, services.settings.host
                )
                listener.start()
            yield
        finally:
            if listener is not None:
                listener.close()
            services.close()

    app = FastAPI(
        title="Arbiter",
        version="0.1.0",
        description="A governed artifact registry: every action decided by Rego, every "
        "decision in a hash-chained audit log.",
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry asks for the tracer and meter providers
        # on every request (environment lookups: 4 % of a manifest GET); we export
        # Prometheus metrics and structured logs instead.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.services = services
    errors.install(app)
    # Added first, so they run inside the request context: the hottest reads of
    # each format, straight to their handlers (see their modules).
    app.add_middleware(OciFrontDoor)
    app.add_middleware(NpmFrontDoor)
    app.add_middleware(RequestContextMiddleware)
    # Starlette tries routes in order, ~2 µs each, and the API has 50: the
    # package formats (every install request) come first, management last.
    # Their prefixes (/v2, /pypi, /npm, /generic, /api/v1) never overlap.
    app.include_router(oci.router)
    app.include_router(npm.router)
    app.include_router(pypi.router)
    app.include_router(generic.router)
    _add_health(app, services)
    app.include_router(api.router)
    return app


def _add_health(app: FastAPI, services: Services) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        checks = {"database": "ok", "policy": services.policy.revision or "none"}
        status = 200
        try:
            with services.db.reader() as session:
                session.connection().execute(text("SELECT 1"))
        except Exception as error:  # any failure means not ready, and says why
            checks["database"] = f"error: {error}"
            status = 503
        return JSONResponse({"status": "ok" if status == 200 else "unready", **checks}, status)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
