"""The decision point: every action on an artifact is decided here, by Rego.

Callers build an input document with :mod:`policies.inputs`, hold a
:class:`PolicyPoint` (or any :class:`PolicyEngine` from :func:`load_engine`),
and get a :class:`Decision` back. Engines fail closed: an engine error,
timeout or unreachable OPA is a deny with reason ``policy engine unavailable``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from policies.bundle import PolicyBundle, load_bundle
from policies.decision import (
    ENGINE_UNAVAILABLE,
    INVALID_INPUT,
    NO_DECISION,
    Decision,
    PolicyEngine,
)
from policies.diff import ImpactReport, RecordedDecision, diff_decisions, read_recorded
from policies.embedded import EmbeddedEngine
from policies.errors import (
    PolicyConfigError,
    PolicyError,
    PolicyInputError,
    PolicyLoadError,
    Problem,
)
from policies.factory import ENGINE_KINDS, default_policy_dir, engine_for_bundle, load_engine
from policies.inputs import build_input, input_digest
from policies.point import PolicyPoint

if TYPE_CHECKING:
    from policies.opa_server import OpaServerEngine
    from policies.wasm import WasmEngine

__all__ = [
    "ENGINE_KINDS",
    "ENGINE_UNAVAILABLE",
    "INVALID_INPUT",
    "NO_DECISION",
    "Decision",
    "EmbeddedEngine",
    "ImpactReport",
    "OpaServerEngine",
    "PolicyBundle",
    "PolicyConfigError",
    "PolicyEngine",
    "PolicyError",
    "PolicyInputError",
    "PolicyLoadError",
    "PolicyPoint",
    "Problem",
    "RecordedDecision",
    "WasmEngine",
    "build_input",
    "default_policy_dir",
    "diff_decisions",
    "engine_for_bundle",
    "input_digest",
    "load_bundle",
    "load_engine",
    "read_recorded",
]


def __getattr__(name: str) -> Any:
    """``OpaServerEngine`` and ``WasmEngine`` on first use: their libraries cost memory
    (~10 MB of HTTP clients; wasmtime's 29 MB library) that the embedded default never uses.
    """
    if name == "OpaServerEngine":
        from policies.opa_server import OpaServerEngine

        return OpaServerEngine
    if name == "WasmEngine":
        from policies.wasm import WasmEngine

        return WasmEngine
    raise AttributeError(f"module 'policies' has no attribute {name!r}")
