"""Metadata storage: engines, models and the Alembic history."""

from registry.db.engine import Database, make_engine
from registry.db.migrate import upgrade

__all__ = ["Database", "make_engine", "upgrade"]
