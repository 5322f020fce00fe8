"""The governance layer: the one road every action on an artifact takes."""

from registry.governance.actions import (
    DELETE,
    PROMOTE,
    PULL,
    PUSH,
    RETAIN,
    STAGE_CONTENT,
    STAGE_REQUEST,
    TAG,
    Action,
    RequestContext,
    Resource,
    Serving,
)
from registry.governance.governor import Governor

__all__ = [
    "DELETE",
    "PROMOTE",
    "PULL",
    "PUSH",
    "RETAIN",
    "STAGE_CONTENT",
    "STAGE_REQUEST",
    "TAG",
    "Action",
    "Governor",
    "RequestContext",
    "Resource",
    "Serving",
]
