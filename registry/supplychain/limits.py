"""How much of an artifact analysis may read, and for how long.

Every pushed artifact is analysed before the content-stage decision, so a
hostile upload (a zip bomb, an endless gzip stream, a million tiny members)
must cost bounded time, memory and disk. Reaching a bound is not a crash: the
scan stops and reports ``scan.status = "failed"`` with the bound's name, and
the policy decides whether such content may enter.

Nothing is extracted: members are streamed and hashed; only metadata files
(bounded by ``max_metadata_size``) are held in memory, and only nested Java
archives and wheels (bounded by ``max_nested_size``) are spooled, into a
private temporary directory that is removed afterwards.

The bounds come from ``ARBITER_SCAN_*`` environment variables.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024
GiB = 1024 * MiB


class ScanLimits(BaseSettings):
    """Bounds on one analysis (one artifact file, nested archives included)."""

    model_config = SettingsConfigDict(env_prefix="ARBITER_SCAN_", extra="ignore")

    max_members: int = Field(default=250_000, gt=0, description="Archive entries, all levels.")
    max_member_size: int = Field(default=4 * GiB, gt=0, description="Bytes of one entry.")
    max_unpacked_size: int = Field(default=16 * GiB, gt=0, description="Bytes of all entries.")
    max_ratio: int = Field(
        default=200, gt=0, description="Unpacked to packed bytes (zip bombs, gzip bombs)."
    )
    ratio_floor: int = Field(
        default=16 * MiB,
        ge=0,
        description="Below this many unpacked bytes the ratio is not checked.",
    )
    max_seconds: float = Field(default=120.0, gt=0, description="Wall-clock time of one analysis.")
    max_metadata_size: int = Field(
        default=8 * MiB, gt=0, description="Bytes of one METADATA, package.json, dpkg status, ..."
    )
    max_nested_size: int = Field(
        default=512 * MiB, gt=0, description="Bytes of one nested JAR or wheel spooled to disk."
    )
    max_depth: int = Field(default=2, ge=0, description="Archives inside archives.")
    # Rendering is not covered by max_seconds: cyclonedx-python-lib builds and
    # writes 600-2,000 components a second here (by load), so this bounds it instead.
    max_file_components: int = Field(
        default=20_000, ge=0, description="Files listed as SBOM components (the rest are counted)."
    )
    temp_dir: Path | None = Field(
        default=None, description="Where the private temporary directory is made (default: TMPDIR)."
    )


@lru_cache(maxsize=1)
def scan_limits() -> ScanLimits:
    """The process's limits, read once from the environment."""
    return ScanLimits()
