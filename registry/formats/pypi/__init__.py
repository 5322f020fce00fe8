"""Python repositories: the upload API, the simple API and the JSON API pip, uv and twine use."""

from registry.formats.pypi.routes import router

__all__ = ["router"]
