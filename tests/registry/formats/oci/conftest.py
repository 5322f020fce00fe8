"""Fixtures the OCI client tests share."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Client configuration in the test's own directory: no credentials leak in or out."""
    return {
        "DOCKER_CONFIG": str(tmp_path / "docker"),
        "REGISTRY_AUTH_FILE": str(tmp_path / "containers-auth.json"),
        "HELM_CONFIG_HOME": str(tmp_path / "helm" / "config"),
        "HELM_CACHE_HOME": str(tmp_path / "helm" / "cache"),
        "HELM_DATA_HOME": str(tmp_path / "helm" / "data"),
        "HOME": str(tmp_path),
    }
