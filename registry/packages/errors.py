"""The one error a package upload is refused with when its content is wrong."""

from __future__ import annotations

from registry.errors import BadRequest


class PackageInvalid(BadRequest):
    """The package (archive, metadata, name or version) cannot be accepted; says why.

    A 400 in every package protocol: the client printed the message, nothing
    was stored, and the same upload will fail again until the package is fixed.
    """

    code = "PACKAGE_INVALID"
