"""The in-process app fixtures (``registry_app`` over SQLite and PostgreSQL) for API tests."""

from tests.fixtures_app import database_url, registry_app

__all__ = ["database_url", "registry_app"]
