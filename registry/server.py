"""Run the registry under granian.

granian was measured against uvicorn (DESIGN.md): it offers the ASGI
``http.response.pathsend`` extension, so Starlette's ``FileResponse`` hands the
file to the server to send without copying it through Python. The command
prepares the database once (migrations, the first administrator), then
replaces itself (``exec``) with a lean supervisor that imports granian and
the settings only: the supervisor lives as long as the server, so it should
not keep the CLI's and the application's modules in memory. Each worker builds
its own app through :func:`app_factory`, reading the settings the command
resolved from an environment variable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from datetime import UTC, datetime
from typing import Any

from granian.constants import HTTPModes, Interfaces
from granian.log import LogLevels
from granian.server import Server
from granian.server.common import AbstractServer
from granian.server.embed import Server as EmbeddedServer
from prometheus_client import Counter
from rich.console import Console
from rich.panel import Panel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.config import Settings
from registry.logging import configure

APP_TARGET = "registry.server:app_factory"
SETTINGS_ENV = "ARBITER_SERVER_SETTINGS"
PATHSEND = "http.response.pathsend"

PATHSEND_RESPONSES = Counter(
    "arbiter_http_pathsend_responses_total",
    "File responses handed to the server to send zero-copy (ASGI pathsend)",
)


def serve(settings: Settings) -> None:
    """Prepare the data directory, then serve until SIGINT or SIGTERM."""
    configure(settings.log_level)
    ensure_port_free(settings.host, settings.port)
    if settings.download_port is not None:
        ensure_port_free(settings.host, settings.download_port, option="--download-port")
    token = prepare(settings)
    if token is not None:
        show_admin_token(token)
    os.environ[SETTINGS_ENV] = settings.model_dump_json(exclude={"bootstrap_token"})
    if settings.workers == 1:
        serve_embedded(settings)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    # The supervisor is exec'd (not a child): same pid, so signals reach granian.
    os.execv(sys.executable, [sys.executable, "-m", "registry.supervisor"])  # noqa: S606


def serve_embedded(settings: Settings) -> None:
    """One worker: granian's embedded server in this process, no supervisor beside it.

    A supervisor process costs its own interpreter (about 50 MB here); with
    one worker there is nothing for it to supervise.
    """
    server = EmbeddedServer(
        app_factory,
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        http=HTTPModes.auto,
        websockets=False,
        log_dictconfig=GRANIAN_LOGGING,
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, server.stop)
        await server.serve()

    asyncio.run(run())


def supervise() -> None:
    """The exec'd supervisor: granian over the settings the command resolved."""
    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    configure(settings.log_level)
    granian_server(settings).serve()


def ensure_port_free(host: str, port: int, option: str = "--port") -> None:
    """Refuse a port another process listens on.

    granian binds with ``SO_REUSEPORT``, so a second server on a port held by
    another ``SO_REUSEPORT`` listener would silently share its connections. A
    plain bind fails against any listener, which gives a clear error instead.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise OSError(
                error.errno, f"{host}:{port} is not available ({error.strerror}); use {option}"
            ) from None


def prepare(settings: Settings) -> str | None:
    """Migrate and bootstrap once, before any worker starts; the new admin token, if any."""
    from registry.bootstrap import ensure_admin, record_configuration
    from registry.services import build_services

    services = build_services(settings)
    try:
        token = ensure_admin(services.governor, settings.bootstrap_token)
        record_configuration(services.governor, settings)
        return token
    finally:
        services.close()


def show_admin_token(token: str) -> None:
    text = (
        f"[bold]{token}[/]\n\n"
        "The user 'admin' was created with this token.\n"
        "Save it now; it is not stored and will not be shown again."
    )
    Console().print(Panel(text, title="Arbiter administrator token", expand=False))


def granian_server(settings: Settings) -> AbstractServer[Any]:
    level = settings.log_level.lower()
    return Server(
        APP_TARGET,
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        http=HTTPModes.auto,
        workers=settings.workers,
        websockets=False,
        log_level=LogLevels(level) if level in LogLevels.__members__ else LogLevels.info,
        log_dictconfig=GRANIAN_LOGGING,
    )


def app_factory() -> ASGIApp:
    """Build the app inside a granian worker from the settings the parent resolved."""
    from registry.app import create_app

    encoded = os.environ.get(SETTINGS_ENV)
    settings = Settings.model_validate_json(encoded) if encoded else Settings()
    configure(settings.log_level)
    return PathsendCounter(create_app(settings))


class PathsendCounter:
    """Counts responses sent through ``pathsend``: proof, in ``/metrics``, of zero-copy files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == PATHSEND:
                PATHSEND_RESPONSES.inc()
            await send(message)

        await self.app(scope, receive, counting_send)


class GranianJsonFormatter(logging.Formatter):
    """granian's own log lines as JSON on stderr, like the registry's structlog lines."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "event": record.getMessage(),
            "level": record.levelname.lower(),
            "logger": "granian",
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
        }
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event)


GRANIAN_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": f"{__name__}.GranianJsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        },
    },
    "loggers": {
        "_granian": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "granian.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}
