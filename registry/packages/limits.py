"""How much of an uploaded archive the registry is willing to look at.

A wheel, sdist or npm tarball is attacker-controlled: a zip bomb declares
gigabytes behind a few kilobytes, a tar stream can go on for ever. Inspection
reads only what these limits allow and refuses the upload otherwise, so one
upload can never exhaust the server's memory or CPU.

The limits come from ``ARBITER_PACKAGE_*`` environment variables (the same
prefix as every other setting) so an operator can tighten or relax them.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024
GiB = 1024 * MiB


class ArchiveLimits(BaseSettings):
    """Bounds on the archives package uploads may contain."""

    model_config = SettingsConfigDict(env_prefix="ARBITER_PACKAGE_", extra="ignore")

    max_members: int = Field(default=100_000, gt=0, description="Entries in one archive.")
    max_member_size: int = Field(default=1 * GiB, gt=0, description="Bytes of one entry, unpacked.")
    max_unpacked_size: int = Field(default=4 * GiB, gt=0, description="Bytes of all entries.")
    max_ratio: int = Field(
        default=500, gt=0, description="Unpacked to packed size of one large entry (zip bombs)."
    )
    ratio_floor: int = Field(
        default=1 * MiB, ge=0, description="Entries smaller than this skip the ratio check."
    )
    max_metadata_size: int = Field(
        default=8 * MiB, gt=0, description="Bytes of METADATA, PKG-INFO or package.json."
    )


@lru_cache(maxsize=1)
def archive_limits() -> ArchiveLimits:
    """The process's limits, read once from the environment."""
    return ArchiveLimits()
