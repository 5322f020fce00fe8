"""Refuse a bad policy bundle before it can decide anything.

Three checks, in order, each naming the file and line it can:

1. regopy compiles the modules (syntax errors, unclosed blocks).
2. ``opa check --strict`` over the bundle as loaded, tests included, when the
   ``opa`` binary is on PATH: regopy accepts some programs OPA rejects
   (unsafe or unused variables, unknown functions), and those would otherwise
   surface only as runtime denies.
3. A probe: the entry point ``data.registry.decision`` must give a well-formed
   decision for a plain anonymous pull, which catches a missing entry point.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, NoReturn

from policies import _compile, _outcome
from policies.bundle import PolicyBundle, opa_binary, opa_check
from policies.errors import PolicyLoadError, Problem
from policies.inputs import Context, Resource, Subject, build_input

PROBE_TIMEOUT_S = 5.0


def probe_input() -> dict[str, Any]:
    """A plain anonymous pull, the input every policy set must answer."""
    return build_input(
        action="pull",
        subject=Subject(id="anonymous", kind="anonymous"),
        resource=Resource(repository="probe", format="generic", name="probe", version="0"),
        context=Context(time="2000-01-01T00:00:00Z", request_id="probe", client="arbiter"),
    )


def validate_bundle(
    bundle: PolicyBundle, *, use_opa: bool | None = None
) -> _compile.CompiledPolicy:
    """Compile, strict-check and probe ``bundle``; the compiled form on success.

    ``use_opa``: ``None`` runs ``opa check`` when the binary is on PATH, ``True``
    requires it, ``False`` skips it.
    """
    compiled = _compile.compile_policy(bundle)
    _strict_check(bundle, use_opa)
    _probe(bundle, compiled)
    return compiled


def _strict_check(bundle: PolicyBundle, use_opa: bool | None) -> None:
    if use_opa is False:
        return
    opa = opa_binary()
    if opa is None:
        if use_opa:
            raise PolicyLoadError("opa check requested but no 'opa' binary is on PATH")
        return
    problems = opa_check(bundle, opa)
    if problems:
        raise PolicyLoadError(f"policy bundle {bundle.root} fails opa check --strict", problems)


def _probe(bundle: PolicyBundle, compiled: _compile.CompiledPolicy) -> None:
    stamp = _outcome.Stamp.start("probe", compiled.revision)
    # Not a ``with`` block: leaving one waits for the thread, and a probe that
    # never ends must not hang the reload.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arbiter-probe")
    future = pool.submit(_evaluate_probe, compiled)
    try:
        defined, value = future.result(timeout=PROBE_TIMEOUT_S)
    except FutureTimeout:
        _refuse(bundle, f"data.registry.decision took over {PROBE_TIMEOUT_S:g} s on a probe")
    except _compile.EvaluationError as error:
        _refuse(bundle, f"data.registry.decision fails on a probe input: {error}")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    decision = _outcome.from_result(stamp, value, defined=defined)
    if decision.details:
        _refuse(bundle, str(decision.details["error"]) + " (probe: anonymous pull)")


def _evaluate_probe(compiled: _compile.CompiledPolicy) -> tuple[bool, Any]:
    value = _compile.evaluate(_compile.new_interpreter(), compiled, probe_input())
    return value is not _compile.UNDEFINED, value


def _refuse(bundle: PolicyBundle, message: str) -> NoReturn:
    raise PolicyLoadError(
        f"policy bundle {bundle.root} refused", (Problem(str(bundle.root), 0, message),)
    )
