"""The Python clients the tests drive: pip (this interpreter's), twine and uv from the venv.

A missing client fails the test (it does not skip): a silently skipped client
test would claim nothing while looking green. They belong in the ``test``
extra; until then ``.venv/bin/pip install twine uv`` installs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

# The caller's pip/uv/twine settings (an index, find-links, a keyring) stay out.
CLIENT_PREFIXES = ("PIP_", "UV_", "TWINE_", "PYTHON_KEYRING")


@dataclass(frozen=True)
class Tools:
    python: str
    twine: str
    uv: str


def _find(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; run .venv/bin/pip install {name}", pytrace=False)
    return found


def tools_in_venv() -> Tools:
    return Tools(python=sys.executable, twine=_find("twine"), uv=_find("uv"))


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a client; on an unexpected failure show what it printed (the registry's answer)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(CLIENT_PREFIXES)}
    merged = {**inherited, **(env or {})}
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
