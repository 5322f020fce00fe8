"""The npm front door takes exactly the requests the npm router gives to ``get_package``."""

from __future__ import annotations

import pytest
from starlette.routing import Match

from registry.formats.npm.front import packument_target
from registry.formats.npm.routes import get_package, router

PATHS = [
    "/npm/r/pkg",
    "/npm/r/@scope/pkg",
    "/npm/r/pkg/1.0.0",
    "/npm/r/@scope/pkg/latest",
    "/npm/r/pkg/",
    "/npm/r/-",
    "/npm/r/pkg/-",
    "/npm/r/-/ping",
    "/npm/r/-/whoami",
    "/npm/r/-/user/org.couchdb.user:ann",
    "/npm/r/-/package/pkg/dist-tags",
    "/npm/r/-/package/@scope/pkg/dist-tags",
    "/npm/r/pkg/-/pkg-1.0.0.tgz",
    "/npm/r/@scope/pkg/-/pkg-1.0.0.tgz",
    "/npm/r/pkg/-rev/3",
    "/npm/r",
    "/npm/",
    "/npmx/r/pkg",
    "/pypi/r/pkg",
]


def _scope(path: str, method: str) -> dict[str, object]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def _routed_to_get_package(path: str, method: str) -> bool:
    """What the npm router does with the request: the first route that fully matches."""
    for route in router.routes:
        match, _child = route.matches(_scope(path, method))
        if match == Match.FULL:
            return getattr(route, "endpoint", None) is get_package
    return False


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD"])
def test_front_door_agrees_with_the_router(path: str, method: str) -> None:
    taken = packument_target(_scope(path, method)) is not None
    if taken:
        assert _routed_to_get_package(path, method)
    elif method == "GET":
        assert not _routed_to_get_package(path, method), f"{path} is a packument the door misses"


def test_scoped_names_keep_their_slash() -> None:
    assert packument_target(_scope("/npm/r/@scope/pkg", "GET")) == ("r", "@scope/pkg")
