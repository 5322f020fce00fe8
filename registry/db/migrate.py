"""Run the Alembic history on start: the only way the schema is created."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Bring the database to ``revision``; safe to call on every start.

    ``heads``: features developed side by side may branch from the same
    revision (each owning its tables); every branch is applied.
    """
    command.upgrade(alembic_config(engine), revision)
