"""Real server processes for tests: ``arbiter serve`` on a free loopback port.

``server_factory`` starts servers (each with its own data directory and a known
admin token, or none to let the server generate one) and stops them when the
test ends; ``live_server`` is one server shared by a whole test module. Both
yield :class:`LiveServer`, which knows the base URL, the admin token, the data
directory, the process and its log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.fixtures_app import database_url, registry_app

__all__ = ["database_url", "live_server", "registry_app", "server_factory"]

LIVE_ADMIN_TOKEN = "arb_live_admin_token_0123456789abcdef"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


@dataclass
class LiveServer:
    url: str
    admin_token: str | None
    data: Path
    log: Path
    process: subprocess.Popen[bytes]
    port: int
    env: dict[str, str] = field(repr=False, default_factory=dict)

    def headers(self, token: str | None = None) -> dict[str, str]:
        secret = token or self.admin_token
        return {"Authorization": f"Bearer {secret}"} if secret else {}

    def client_env(self, token: str | None = None) -> dict[str, str]:
        """Environment for CLI client commands talking to this server."""
        return {"ARBITER_URL": self.url, "ARBITER_TOKEN": token or self.admin_token or ""}

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def arbiter_command() -> list[str]:
    """The installed console script (what users run), else the module."""
    script = Path(sys.executable).with_name("arbiter")
    if script.exists():
        return [str(script)]
    found = shutil.which("arbiter")
    return [found] if found else [sys.executable, "-m", "registry.cli.main"]


TEST_POLICY_TIMEOUT_MS = 5000


def _environment(bootstrap_token: str | None, extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without ARBITER_* (so no stray config leaks in), plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")}
    env["ARBITER_LOG_LEVEL"] = "info"
    # A stalled CI machine must not turn a slow decision into a denial the test
    # did not ask for; the timeout itself has its own tests (tests/policies).
    env["ARBITER_POLICY_TIMEOUT_MS"] = str(TEST_POLICY_TIMEOUT_MS)
    if bootstrap_token is not None:
        env["ARBITER_BOOTSTRAP_TOKEN"] = bootstrap_token
    env.update(extra)
    return env


def start_server(
    data: Path,
    *,
    bootstrap_token: str | None = LIVE_ADMIN_TOKEN,
    env: Mapping[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> LiveServer:
    """Start ``arbiter serve --host 127.0.0.1 --port P --data DATA`` and wait until ready."""
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = data.parent / f"{data.name}-server-{port}.log"
    command = [
        *arbiter_command(),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data",
        str(data),
        *args,
    ]
    environment = _environment(bootstrap_token, env or {})
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command, env=environment, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = LiveServer(
        url=f"http://127.0.0.1:{port}",
        admin_token=bootstrap_token,
        data=data,
        log=log,
        process=process,
        port=port,
        env=environment,
    )
    try:
        wait_ready(server)
    except BaseException:
        stop_server(server)
        raise
    return server


def wait_ready(server: LiveServer, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"arbiter serve exited with {server.process.returncode}:\n{_tail(server)}")
        try:
            if httpx.get(server.url + "/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"arbiter serve was not ready within {timeout:.0f}s:\n{_tail(server)}")


def stop_server(server: LiveServer) -> None:
    """SIGTERM (granian stops its workers gracefully), then SIGKILL the session we started."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(STOP_TIMEOUT_S)
    _reap_workers(server.process.pid)


def _reap_workers(session_id: int) -> None:
    """Workers left behind by a killed parent are in the session we started; end them."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(session_id, signal.SIGKILL)


def _tail(server: LiveServer, lines: int = 60) -> str:
    return "\n".join(server.log_text().splitlines()[-lines:])


ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers with ``server_factory(data=..., bootstrap_token=..., env=..., args=...)``."""
    started: list[LiveServer] = []

    def start(
        data: Path | None = None,
        *,
        bootstrap_token: str | None = LIVE_ADMIN_TOKEN,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> LiveServer:
        directory = data or tmp_path / f"server-{len(started)}"
        server = start_server(directory, bootstrap_token=bootstrap_token, env=env, args=args)
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        stop_server(server)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server for a whole test module, with ``LIVE_ADMIN_TOKEN`` as admin."""
    server = start_server(tmp_path_factory.mktemp("live") / "data")
    yield server
    stop_server(server)


@contextlib.contextmanager
def server_with_repositories(data: Path, *repositories: dict[str, object]) -> Iterator[LiveServer]:
    """A real server whose admin has created ``repositories`` (API bodies) before use."""
    server = start_server(data)
    try:
        headers = {"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"}
        for body in repositories:
            response = httpx.post(f"{server.url}/api/v1/repositories", json=body, headers=headers)
            assert response.status_code == 201, response.text
        yield server
    finally:
        stop_server(server)
