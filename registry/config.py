"""Settings: ``ARBITER_*`` environment variables, then an optional TOML file.

The embedded defaults need no servers: SQLite in ``<data>/arbiter.db``, blobs
under ``<data>/blobs`` and the in-process Rego engine over the ``rego/`` that
ships with the package.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

GiB = 1024**3


class Settings(BaseSettings):
    """Every knob of one Arbiter instance."""

    model_config = SettingsConfigDict(env_prefix="ARBITER_", extra="ignore")

    data: Path = Field(default=Path("var"), description="Data directory (SQLite, blobs, keys).")
    database_url: str = Field(default="", description="sqlite:///... or postgresql+psycopg://...")
    blob_store: Literal["filesystem"] = "filesystem"
    blob_root: Path | None = None
    policy_engine: Literal["embedded", "wasm", "opa"] = "embedded"
    opa_url: str | None = None
    policy_dir: Path | None = None
    policy_timeout_ms: int = Field(default=250, gt=0)
    policy_watch: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_upload_size: int = Field(default=10 * GiB, gt=0)
    bootstrap_token: str | None = None
    audit_key_path: Path | None = None
    checkpoint_interval_s: int = Field(default=300, ge=0)
    log_level: str = "info"
    workers: int = Field(default=1, ge=1)
    download_port: int | None = Field(
        default=None,
        ge=1,  # every worker binds it and links name it: "any free port" cannot work
        le=65535,
        description="Serve whole OCI blobs from this port with sendfile, behind a 307 to a "
        "signed link (off when unset).",
    )
    download_url: str | None = Field(
        default=None,
        description="Public base URL of the download port, when clients reach it by another "
        "name (a proxy); else http://<the host the client used>:<download_port>.",
    )
    download_link_ttl_s: int = Field(default=60, gt=0)
    download_min_size: int = Field(
        default=16 * 1024 * 1024,
        ge=0,
        description="Smaller blobs are sent by the app server: the redirect's extra request "
        "costs them more than sendfile saves.",
    )

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        """Fill paths that default to places inside the data directory."""
        self.data = self.data.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data / 'arbiter.db'}"
        if self.blob_root is None:
            self.blob_root = self.data / "blobs"
        if self.audit_key_path is None:
            self.audit_key_path = self.data / "keys" / "audit-ed25519.pem"
        if self.policy_engine == "opa" and not self.opa_url:
            raise ValueError("ARBITER_OPA_URL is required when ARBITER_POLICY_ENGINE=opa")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments beat the environment, which beats ``ARBITER_CONFIG`` (TOML)."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("ARBITER_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)
