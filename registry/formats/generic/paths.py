"""Validation of generic artifact paths: ``PACKAGE/VERSION/FILENAME``."""

from __future__ import annotations

from dataclasses import dataclass

from registry.errors import BadRequest

FORBIDDEN_CHARS = ("\x00", "\\")
MAX_SEGMENT = 255


@dataclass(frozen=True)
class GenericPath:
    package: str
    version: str | None = None
    filename: str | None = None


def parse(path: str) -> GenericPath:
    """Split and check a path; every unsafe form is a 400 naming the problem."""
    if path.startswith("/"):
        raise BadRequest("absolute paths are not allowed; use PACKAGE/VERSION/FILENAME")
    if path.endswith("/"):
        path = path[:-1]
    segments = path.split("/")
    if not 1 <= len(segments) <= 3:
        raise BadRequest("the path must be PACKAGE[/VERSION[/FILENAME]]")
    for segment in segments:
        _check_segment(segment)
    return GenericPath(*segments)


def _check_segment(segment: str) -> None:
    if segment == "":
        raise BadRequest("empty path segments are not allowed")
    if segment in (".", ".."):
        raise BadRequest("'.' and '..' are not allowed in paths")
    if any(char in segment for char in FORBIDDEN_CHARS):
        raise BadRequest("NUL bytes and backslashes are not allowed in paths")
    if len(segment) > MAX_SEGMENT:
        raise BadRequest(f"path segments are limited to {MAX_SEGMENT} characters")
    if any(ord(char) < 0x20 for char in segment):
        raise BadRequest("control characters are not allowed in paths")
