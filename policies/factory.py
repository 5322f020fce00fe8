"""Choose and build an engine from settings, in one place.

Callers ask for an engine by kind (``embedded``, ``wasm`` or ``opa``) and never
import regopy, wasmtime or opa-python-client themselves.
"""

from __future__ import annotations

from pathlib import Path

from policies.bundle import PolicyBundle, load_bundle
from policies.decision import PolicyEngine
from policies.embedded import DEFAULT_TIMEOUT_MS, EmbeddedEngine
from policies.errors import PolicyConfigError
from policies.validation import validate_bundle

ENGINE_KINDS = ("embedded", "wasm", "opa")


def default_policy_dir() -> Path:
    """The ``rego/`` directory beside this package (the package is installed editable)."""
    return Path(__file__).resolve().parents[1] / "rego"


def engine_for_bundle(
    bundle: PolicyBundle,
    kind: str,
    opa_url: str | None = None,
    timeout_ms: float = DEFAULT_TIMEOUT_MS,
    *,
    use_opa_check: bool | None = None,
) -> PolicyEngine:
    """Validate ``bundle`` and put it in force on a new engine of ``kind``.

    Raises :class:`PolicyLoadError` for a refused bundle and
    :class:`PolicyConfigError` for unusable settings.
    """
    if kind not in ENGINE_KINDS:
        raise PolicyConfigError(f"policy engine {kind!r} is unknown; use one of {ENGINE_KINDS}")
    if kind == "opa" and not opa_url:
        raise PolicyConfigError("the opa engine needs the OPA server URL (ARBITER_OPA_URL)")
    compiled = validate_bundle(bundle, use_opa=use_opa_check)
    if kind == "opa" and opa_url:
        # Imported here: opa-python-client brings aiohttp and requests (~10 MB per
        # worker) that the embedded default never uses.
        from policies.opa_server import OpaServerEngine

        return OpaServerEngine(bundle, opa_url, timeout_ms=timeout_ms)
    if kind == "wasm":
        # Imported here too: wasmtime costs 25 ms to import and maps a 29 MB library.
        from policies.wasm import WasmEngine, compile_policy

        return WasmEngine(compile_policy(bundle, compiled.projection), timeout_ms=timeout_ms)
    return EmbeddedEngine(compiled, timeout_ms=timeout_ms)


def load_engine(
    kind: str,
    policy_dir: Path | None = None,
    opa_url: str | None = None,
    timeout_ms: float = DEFAULT_TIMEOUT_MS,
) -> PolicyEngine:
    """Load ``policy_dir`` (default :func:`default_policy_dir`) into an engine of ``kind``."""
    bundle = load_bundle(policy_dir or default_policy_dir())
    return engine_for_bundle(bundle, kind, opa_url, timeout_ms)
