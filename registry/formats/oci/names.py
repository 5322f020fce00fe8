"""Parse ``/v2/...`` paths: which endpoint, which repository, which image.

An OCI name ``R/<image>`` names the Arbiter repository ``R`` (its first path
component) and an image inside it (the rest, which may contain slashes). The
endpoint is recognised from the end of the path, as the distribution spec's
own grammar does, so image names may contain any component.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.formats.oci.errors import OciError

MAX_NAME = 255
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")

MANIFEST = "manifest"
BLOB = "blob"
UPLOADS = "uploads"
TAGS = "tags"
REFERRERS = "referrers"

# Tried in order; the first whose suffix matches names the endpoint.
_ENDPOINTS = (
    (UPLOADS, re.compile(r"(?P<name>.+)/blobs/uploads/?(?P<arg>[^/]*)")),
    (BLOB, re.compile(r"(?P<name>.+)/blobs/(?P<arg>[^/]+)")),
    (MANIFEST, re.compile(r"(?P<name>.+)/manifests/(?P<arg>[^/]+)")),
    (TAGS, re.compile(r"(?P<name>.+)/tags/list(?P<arg>)")),
    (REFERRERS, re.compile(r"(?P<name>.+)/referrers/(?P<arg>[^/]+)")),
)


@dataclass(frozen=True)
class Target:
    """One ``/v2/<name>/<endpoint>/<arg>`` request target."""

    endpoint: str
    repository: str
    image: str
    arg: str

    @property
    def name(self) -> str:
        """The OCI name, ``repository/image``."""
        return f"{self.repository}/{self.image}"


def parse_target(path: str) -> Target:
    """``path`` is what follows ``/v2/``; raises NAME_INVALID or a 404 for unknown endpoints."""
    for endpoint, pattern in _ENDPOINTS:
        match = pattern.fullmatch(path)
        if match is not None:
            repository, image = split_name(match["name"])
            return Target(endpoint, repository, image, match["arg"])
    raise OciError(
        "UNSUPPORTED",
        f"/v2/{path} is not an endpoint of the distribution API",
        status=404,
    )


def split_name(name: str) -> tuple[str, str]:
    """``R/img/sub`` -> ``("R", "img/sub")``; both parts must follow the spec's grammar."""
    if len(name) > MAX_NAME or NAME.fullmatch(name) is None:
        raise OciError(
            "NAME_INVALID",
            f"invalid name {name!r}: use lower-case components separated by '/', "
            "e.g. REPOSITORY/IMAGE",
            detail={"name": name},
        )
    repository, _, image = name.partition("/")
    if not image:
        raise OciError(
            "NAME_INVALID",
            f"name {name!r} has no image part: push to REPOSITORY/IMAGE "
            f"(for example {name}/app), where REPOSITORY is an Arbiter repository of format oci",
            detail={"name": name},
        )
    return repository, image


def is_tag(reference: str) -> bool:
    return TAG.fullmatch(reference) is not None
