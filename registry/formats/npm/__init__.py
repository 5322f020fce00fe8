"""npm repositories: publish, install, dist-tags, deprecate, unpublish and login, as npm does."""

from registry.formats.npm.routes import router

__all__ = ["router"]
