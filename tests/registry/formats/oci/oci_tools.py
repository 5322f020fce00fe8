"""Outside tools the OCI tests drive: found where ``scripts/install-tools.sh`` puts them.

A missing tool fails the test (it does not skip): ``make test`` installs them
all, and a silently skipped client test would claim nothing while looking green.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[4]
TOOLS_BIN = Path(os.environ.get("ARBITER_TOOLS", Path.home() / ".cache" / "arbiter-tools")) / "bin"


def tool(name: str) -> str:
    """The path of ``name``: the tools directory first, then ``PATH``."""
    candidate = TOOLS_BIN / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; run scripts/install-tools.sh", pytrace=False)
    return found


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a client command; on failure show its output, which says what the registry answered."""
    merged = {**os.environ, **(env or {})}
    done = subprocess.run(
        list(args), env=merged, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if check and done.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited {done.returncode}\n--- stdout\n{done.stdout}\n"
            f"--- stderr\n{done.stderr}",
            pytrace=False,
        )
    return done


def create_oci_repo(url: str, token: str, name: str, **extra: object) -> None:
    response = httpx.post(
        f"{url}/api/v1/repositories",
        json={"name": name, "format": "oci", **extra},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text


def host_of(url: str) -> str:
    return url.removeprefix("http://").removeprefix("https://")


# A push policy for the tests: refuse what analysis failed on or found critical.
STRICT_PUSH = """package registry.push

deny contains msg if {
	input.context.stage == "content"
	input.artifact.scan.status == "failed"
	msg := sprintf("content was not analysed (failed): %v", [input.artifact.scan.reason])
}

deny contains msg if {
	input.context.stage == "content"
	input.artifact.vulnerabilities.critical > 0
	n := input.artifact.vulnerabilities.critical
	msg := sprintf("%v critical vulnerability finding(s)", [n])
}
"""


def strict_policy(directory: Path) -> Path:
    """The repository's policies plus :data:`STRICT_PUSH`."""
    shutil.copytree(REPO_ROOT / "rego", directory)
    (directory / "registry" / "push" / "strict_scan.rego").write_text(STRICT_PUSH)
    return directory
