"""Fixtures for the decision point: policy directories, inputs and a real OPA server.

The OPA server is a real ``opa run --server`` on a free loopback port, started
and stopped here; tests that need it skip, saying why, only when the ``opa``
binary is absent (``scripts/install-tools.sh`` installs it).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from policies import default_policy_dir
from policies.inputs import (
    Artifact,
    Context,
    Repository,
    Resource,
    Subject,
    TagChange,
    build_input,
)

FIXTURES = Path(__file__).parent / "fixtures"
DENY_ALL = FIXTURES / "deny_all"
ALLOW_ALL = FIXTURES / "allow_all"
NOW = "2026-11-28T20:00:00Z"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OpaServer:
    """A running ``opa run --server``; ``stop()`` kills it (tests use that on purpose)."""

    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def start_opa(opa: str, port: int | None = None) -> OpaServer:
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [opa, "run", "--server", "--addr", f"127.0.0.1:{port}", "--log-level", "error"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                return OpaServer(process, url)
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"opa run --server did not answer on {url} within 15 s")


@pytest.fixture(scope="session")
def opa_binary() -> str:
    opa = shutil.which("opa")
    if opa is None:
        pytest.skip("the opa binary is not on PATH; run scripts/install-tools.sh")
    return opa


@pytest.fixture
def opa_server(opa_binary: str) -> Iterator[OpaServer]:
    """A fresh OPA server for one test."""
    server = start_opa(opa_binary)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shared_opa_server(opa_binary: str) -> Iterator[OpaServer]:
    """One OPA server for a whole module of tests that do not stop it."""
    server = start_opa(opa_binary)
    yield server
    server.stop()


@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    """A writable copy of the starter policies."""
    target = tmp_path / "rego"
    shutil.copytree(default_policy_dir(), target)
    return target


MakeInput = Callable[..., dict[str, Any]]


def make_input(
    action: str = "pull",
    *,
    roles: tuple[str, ...] = ("reader:libs",),
    kind: str = "user",
    teams: tuple[str, ...] = (),
    repository: str = "libs",
    name: str = "requests",
    version: str = "2.32.0",
    digest: str = "sha256:" + "a" * 64,
    public: bool = False,
    artifact: Artifact | None = None,
    tag: TagChange | None = None,
    target: str | None = None,
    stage: str = "request",
    time: str = NOW,
) -> dict[str, Any]:
    """A complete input document with sensible defaults, for one starter rule at a time."""
    labels = {"public": "true"} if public else {}
    return build_input(
        action=action,
        subject=Subject(
            id="alice" if kind != "anonymous" else "anonymous", kind=kind, roles=roles, teams=teams
        ),
        resource=Resource(
            repository=repository, format="pypi", name=name, version=version, digest=digest
        ),
        repository=Repository(name=repository, format="pypi", labels=labels),
        artifact=artifact,
        tag=tag,
        target_repository=target,
        context=Context(time=time, request_id="req-1", client="pytest", stage=stage),
    )


def realistic_artifact() -> Artifact:
    """An SBOM of 200 components and 30 findings, as the benchmark uses."""
    return Artifact(
        size=48_000_000,
        created_at="2026-10-01T12:00:00Z",
        labels={"team": "payments"},
        tags=["2.32.0", "latest"],
        licenses=["Apache-2.0", "BSD-3-Clause", "MIT", "ISC", "PSF-2.0"],
        purls=[f"pkg:pypi/component-{index}@1.{index}.0" for index in range(200)],
        critical=0,
        high=4,
        vulnerability_ids=[f"CVE-2026-{10000 + index}" for index in range(30)],
        last_pulled_at="2026-11-27T08:00:00Z",
        downloads=1234,
        provenance={"builder": "ci", "source": "git+https://example.test/app"},
    )
