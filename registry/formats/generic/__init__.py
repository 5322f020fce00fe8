"""Generic files: upload, download, list and delete any file by path."""

from registry.formats.generic.routes import router

__all__ = ["router"]
