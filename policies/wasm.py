"""The wasm engine: OPA's own compiler to WebAssembly, evaluated in-process by wasmtime.

Why a third engine: the embedded engine spends about 600 µs of CPU on a
decision (regopy's query, handing the input over one ctypes call per JSON
node, and a hop to a worker thread), while the registry's read path can afford
about 100 µs. ``opa build -t wasm`` compiles the bundle into a module that
evaluates ``data.registry.decision`` from an input written into its memory as
one JSON string, with OPA's own compiler (so OPA's semantics, not a
reimplementation's), in well under that.

How it runs:

- **One compiled module per revision**, built by the ``opa`` binary from the
  bundle as loaded (tests left out) and compiled once by wasmtime.
- **One instance per thread** (a wasm instance is not thread-safe): its own
  store and memory, the bundle's data parsed into that memory once, and the
  heap position after it remembered. Each decision writes the input JSON at
  that position and calls ``opa_eval`` with the heap starting after the
  input, so every evaluation starts from the same clean heap.
- **Inline on the calling thread**: no pool, no hop; the hop is what costs.
- **Timeouts by epoch interruption**: one wasmtime engine per process, a daemon
  thread that advances its epoch every 10 ms, and a deadline set before each
  evaluation; a runaway evaluation traps at about the timeout. A trap of any
  kind is the fail-closed deny, and the thread's instance is thrown away (its
  state may be half-written) and rebuilt for the next decision. A decision
  that ran longer than the timeout without trapping is denied as well.
- **Memory is capped** at 1 GiB per instance, so runaway growth traps too.
- **Host builtins**: the few builtins the compiled module leaves to the host
  (``sprintf``, ``time.parse_rfc3339_ns``) are implemented in
  :mod:`policies._wasm_builtins`; a bundle needing any other is refused when
  it is loaded, naming the builtin, so the last good revision stays in force.

The bundle is validated exactly as for the other engines first (regopy
compiles it, ``opa check --strict``, a probe); the compiled module is then
probed once more itself. Like the other engines, it evaluates only the part of
the input the modules read (:mod:`policies._projection`), while the decision's
input digest covers the whole input.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import wasmtime

from policies import _outcome, _wasm_builtins, _wasm_calls
from policies._compile import REGOPY_ENTRYPOINT
from policies._projection import Projection, project
from policies.bundle import PolicyBundle, opa_binary, run_opa
from policies.decision import Decision
from policies.embedded import DEFAULT_TIMEOUT_MS
from policies.errors import PolicyLoadError, Problem
from policies.validation import PROBE_TIMEOUT_S, probe_input, validate_bundle

WASM_ENTRYPOINT = REGOPY_ENTRYPOINT  # registry/decision, as opa build -e names it
TICK_S = 0.01
MAX_MEMORY_PAGES = 16_384  # 64 KiB pages: 1 GiB
_READ_CHUNK = 4096
_HOST_FUNCTIONS = ("opa_abort", "opa_println", *(f"opa_builtin{n}" for n in range(5)))
_OPA_PROBLEM = re.compile(r"^(?P<file>\S+?\.rego):(?P<line>\d+): (?P<message>.+)$", re.MULTILINE)
_INSTALL_HINT = (
    "the wasm engine compiles policies with the 'opa' binary, and none is on PATH:"
    " install it with scripts/install-tools.sh (as make test does) or"
    " go install github.com/open-policy-agent/opa@v1.22.3"
)


class WasmError(Exception):
    """The module misbehaved: an abort, a trap, a result that is not OPA's shape."""


@dataclass(frozen=True)
class WasmPolicy:
    """A bundle compiled to wasm, with what an instance needs to evaluate it.

    ``entrypoint`` and ``builtins`` come from the module's own exports, so a
    first instance is made without them (they stay -1 and ``None`` there).
    """

    revision: str
    module: wasmtime.Module
    projection: Projection
    data_json: bytes
    memory_pages: int
    entrypoint: int = -1
    builtins: Mapping[int, str] | None = None


# --- the epoch clock -------------------------------------------------------------


class _EpochClock:
    """The process's one wasmtime engine and the thread that advances its epoch.

    Every module is compiled for this engine, so every store shares its
    epoch. The ticker starts with the first decision, and again in a child
    process after a fork (threads do not survive one). Compilation is not
    parallel: wasmtime's compiler threads would not survive a fork either,
    and a single thread compiles the starter bundle in about 0.4 s.
    """

    def __init__(self) -> None:
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.parallel_compilation = False
        self.engine = wasmtime.Engine(config)
        self._lock = threading.Lock()
        self._pid = 0

    def ensure_ticking(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                ticker = threading.Thread(target=self._tick, name="arbiter-wasm-epoch", daemon=True)
                ticker.start()
                self._pid = os.getpid()

    def _tick(self) -> None:
        while True:
            time.sleep(TICK_S)
            self.engine.increment_epoch()


@cache
def _clock() -> _EpochClock:
    return _EpochClock()


def deadline_ticks(timeout_ms: float) -> int:
    """Epoch ticks for ``timeout_ms``, plus one: the current tick may be nearly over."""
    return max(1, math.ceil(timeout_ms / (TICK_S * 1000))) + 1


# --- compiling -------------------------------------------------------------------


def compile_to_wasm(bundle: PolicyBundle) -> bytes:
    """``policy.wasm`` built by ``opa build -t wasm`` from the bundle as loaded (tests left out).

    Raises :class:`PolicyLoadError` when ``opa`` is missing or refuses the bundle.
    """
    opa = opa_binary()
    if opa is None:
        raise PolicyLoadError(f"policy bundle {bundle.root} cannot be compiled: {_INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="arbiter-opa-build-") as scratch:
        source, output = Path(scratch) / "bundle", Path(scratch) / "bundle.tar.gz"
        bundle.write_to(source, tests=False)
        try:
            # Run from inside the bundle so that the file names the module keeps for
            # its error messages (a conflict names file:row:col) are the bundle's own.
            build = ("build", "-t", "wasm", "-e", WASM_ENTRYPOINT, "-o", str(output), ".")
            completed = run_opa(opa, *build, cwd=source)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise PolicyLoadError(f"opa build -t wasm failed on {bundle.root}: {error}") from error
        if completed.returncode != 0:
            problems = tuple(_build_problems(completed.stderr or completed.stdout))
            raise PolicyLoadError(
                f"opa build -t wasm refused policy bundle {bundle.root}", problems
            )
        with tarfile.open(output) as archive:
            for member in archive.getmembers():
                if member.name.lstrip("/") == "policy.wasm":
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        return extracted.read()
    raise PolicyLoadError(f"opa build -t wasm produced no policy.wasm for {bundle.root}")


def _build_problems(output: str) -> Iterator[Problem]:
    found = False
    for match in _OPA_PROBLEM.finditer(output):
        found = True
        file = match.group("file").removeprefix("./")
        yield Problem(file, int(match.group("line")), match.group("message"))
    if not found:
        yield Problem("opa build", 0, output.strip() or "opa build failed without output")


def compile_policy(bundle: PolicyBundle, projection: Projection) -> WasmPolicy:
    """Compile ``bundle`` to a module, check what it needs, and probe it.

    Raises :class:`PolicyLoadError` when ``opa`` is missing or refuses the
    bundle, when the module needs a host builtin not implemented here, or
    when the compiled policy does not answer the probe input.
    """
    clock = _clock()
    clock.ensure_ticking()  # the probe below is held to a deadline too
    try:
        module = wasmtime.Module(clock.engine, compile_to_wasm(bundle))
    except wasmtime.WasmtimeError as error:
        raise PolicyLoadError(f"wasmtime cannot compile {bundle.root}'s module: {error}") from error
    draft = WasmPolicy(
        revision=bundle.revision,
        module=module,
        projection=projection,
        data_json=json.dumps(dict(bundle.data), ensure_ascii=False).encode("utf-8"),
        memory_pages=_memory_pages(bundle, module),
    )
    try:
        first = _Instance(draft)
        builtins = first.exported("builtins")
        entrypoints = first.exported("entrypoints")
    except (WasmError, wasmtime.WasmtimeError, wasmtime.Trap) as error:
        raise _refused(bundle, f"the compiled module does not start: {error}") from error
    missing = sorted(set(builtins) - set(_wasm_builtins.HOST_BUILTINS))
    if missing:
        raise _refused(
            bundle,
            f"the wasm engine does not implement builtin(s) {', '.join(missing)}, which OPA's"
            " wasm compiler leaves to the host; use the embedded or opa engine for this bundle",
        )
    if WASM_ENTRYPOINT not in entrypoints:
        raise _refused(bundle, f"the compiled module has no entry point {WASM_ENTRYPOINT}")
    policy = replace(
        draft,
        entrypoint=int(entrypoints[WASM_ENTRYPOINT]),
        builtins={int(number): name for name, number in builtins.items()},
    )
    _probe(bundle, policy)
    return policy


def _memory_pages(bundle: PolicyBundle, module: wasmtime.Module) -> int:
    """The module's minimum memory; refuses imports no host here provides."""
    pages = 0
    for imported in module.imports:
        if isinstance(imported.type, wasmtime.MemoryType) and imported.name == "memory":
            pages = imported.type.limits.min
        elif imported.module != "env" or imported.name not in _HOST_FUNCTIONS:
            raise _refused(bundle, f"the compiled module imports {imported.module}.{imported.name}")
    if not 0 < pages <= MAX_MEMORY_PAGES:
        raise _refused(bundle, f"the compiled module asks for {pages} pages of memory")
    return pages


def _probe(bundle: PolicyBundle, policy: WasmPolicy) -> None:
    """The compiled module, not only regopy, must answer a plain anonymous pull."""
    stamp = _outcome.Stamp.start("probe", policy.revision)
    try:
        defined, value = _Instance(policy).evaluate(
            _input_json(project(probe_input(), policy.projection)),
            deadline_ticks(PROBE_TIMEOUT_S * 1000),
        )
    except Exception as error:  # a trap, an abort, a host builtin failing
        raise _refused(bundle, f"the compiled module fails on a probe input: {error}") from error
    decision = _outcome.from_result(stamp, value, defined=defined)
    if decision.details:
        raise _refused(bundle, f"{decision.details['error']} (wasm probe: anonymous pull)")


def _refused(bundle: PolicyBundle, message: str) -> PolicyLoadError:
    return PolicyLoadError(
        f"policy bundle {bundle.root} refused by the wasm engine",
        (Problem(str(bundle.root), 0, message),),
    )


def _input_json(document: Any) -> bytes:
    """The input as JSON, written as :func:`policies.inputs.canonical_json` writes it (unsorted)."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


# --- one thread's instance -------------------------------------------------------


class _Instance:
    """A store, instance and memory over a compiled policy, for one thread only.

    Its calls go through :mod:`policies._wasm_calls`, which keeps the GIL for
    all but the evaluation. ``failure`` records what went wrong inside a host
    function (an abort, a builtin this module cannot reproduce) so that the
    deny can say what happened.
    """

    def __init__(self, policy: WasmPolicy) -> None:
        self.policy = policy
        self.failure = ""
        store = self.store = wasmtime.Store(_clock().engine)
        store.set_epoch_deadline(deadline_ticks(PROBE_TIMEOUT_S * 1000))
        limits = wasmtime.Limits(policy.memory_pages, MAX_MEMORY_PAGES)
        self.memory = wasmtime.Memory(store, wasmtime.MemoryType(limits))
        imports = [self._import(str(item.name)) for item in policy.module.imports]
        exports = self._exports = wasmtime.Instance(store, policy.module, imports).exports(store)
        self._calls = _wasm_calls.Calls(store, self.memory)
        self._malloc = self._function("opa_malloc")
        self._json_parse = self._function("opa_json_parse")
        self._json_dump = self._function("opa_json_dump")
        self._value_dump = self._function("opa_value_dump")
        self._eval = self._function("opa_eval")
        version = exports["opa_wasm_abi_version"]
        minor = exports["opa_wasm_abi_minor_version"]
        if not (isinstance(version, wasmtime.Global) and isinstance(minor, wasmtime.Global)):
            raise WasmError("the module does not declare its OPA wasm ABI version")
        if (version.value(store), minor.value(store)) < (1, 2):
            raise WasmError("the module's OPA wasm ABI is older than 1.2 (no opa_eval)")
        self.data = self._parse(policy.data_json)
        self.heap = self._calls.call(self._function("opa_heap_ptr_get"))

    def evaluate(self, input_json: bytes, ticks: int) -> tuple[bool, Any]:
        """``(defined, value)`` of the entry point for ``input_json``; raises on any failure."""
        end = self.heap + len(input_json)
        self._reserve(end)
        self._write(self.heap, input_json)
        self._calls.set_deadline(ticks)
        self.failure = ""
        address = self._calls.call(
            self._eval,
            *(0, self.policy.entrypoint, self.data, self.heap, len(input_json), end, 0),
            release_gil=True,
        )
        results = json.loads(self._string(address))
        if not results:
            return False, None
        if not isinstance(results, list) or not isinstance(results[0], dict):
            raise WasmError(f"opa_eval answered {results!r:.200}")
        return True, results[0].get("result")

    def exported(self, name: str) -> dict[str, Any]:
        """A JSON object an export function returns (``builtins``, ``entrypoints``)."""
        address = self._calls.call(self._json_dump, self._calls.call(self._function(name)))
        value = json.loads(self._string(address))
        if not isinstance(value, dict):
            raise WasmError(f"the module's {name} export is not an object")
        return value

    def _import(self, name: str) -> wasmtime.Memory | wasmtime.Func:
        i32 = wasmtime.ValType.i32()
        if name == "memory":
            return self.memory
        if name in ("opa_abort", "opa_println"):
            host = self._abort if name == "opa_abort" else _ignore
            return wasmtime.Func(self.store, wasmtime.FuncType([i32], []), host)
        arity = int(name.removeprefix("opa_builtin"))
        signature = wasmtime.FuncType([i32] * (arity + 2), [i32])
        return wasmtime.Func(self.store, signature, self._builtin)

    def _function(self, name: str) -> wasmtime.Func:
        function = self._exports[name]
        if not isinstance(function, wasmtime.Func):
            raise WasmError(f"the module does not export a function {name}")
        return function

    def _abort(self, address: int) -> None:
        self.failure = "opa_abort: " + self._string(address).decode("utf-8", "replace")
        raise WasmError(self.failure)

    def _builtin(self, builtin: int, _context: int, *arguments: int) -> int:
        name = (self.policy.builtins or {}).get(builtin, f"builtin #{builtin}")
        try:
            dumped = [self._string(self._calls.call(self._value_dump, arg)) for arg in arguments]
            result = _wasm_builtins.call(name, dumped)
        except Exception as error:
            self.failure = f"{name}: {error}"
            raise
        return 0 if result is None else self._parse(result)

    def _parse(self, data: bytes) -> int:
        """``data`` (JSON) parsed into a value in the module's memory; its address."""
        address = self._calls.call(self._malloc, len(data))
        self._write(address, data)
        value = self._calls.call(self._json_parse, address, len(data))
        if not value:
            raise WasmError("the module could not parse a JSON value")
        return value

    def _reserve(self, end: int) -> None:
        """Grow the memory so that it reaches ``end`` (the input is written past the heap)."""
        size = self._calls.memory()[1]
        if end > size:
            self.memory.grow(self.store, -(-(end - size) // 65536))

    def _write(self, address: int, data: bytes) -> None:
        base, size = self._calls.memory()
        if address < 0 or address + len(data) > size:
            raise WasmError(f"a write of {len(data)} bytes at {address} leaves the module's memory")
        _wasm_calls.write(base + address, data)

    def _string(self, address: int) -> bytes:
        """The NUL-terminated string at ``address``, read in chunks, never past the memory."""
        base, size = self._calls.memory()
        if not 0 < address < size:
            raise WasmError(f"the module returned address {address}")
        pieces: list[bytes] = []
        while address < size:
            chunk = _wasm_calls.read(base + address, min(_READ_CHUNK, size - address))
            end = chunk.find(b"\0")
            if end >= 0:
                pieces.append(chunk[:end])
                return b"".join(pieces)
            pieces.append(chunk)
            address += len(chunk)
        raise WasmError("the module returned a string without its terminating NUL")


def _ignore(_address: int) -> None:
    """``print`` in a policy: the registry keeps policy output out of its logs."""


# --- the engine ------------------------------------------------------------------


class WasmEngine:
    """Evaluates ``data.registry.decision`` compiled to wasm; thread-safe, fails closed."""

    name = "wasm"

    def __init__(self, policy: WasmPolicy, *, timeout_ms: float = DEFAULT_TIMEOUT_MS) -> None:
        self._policy = policy
        self._timeout_ms = timeout_ms
        self._timeout_ns = int(timeout_ms * 1_000_000)
        self._ticks = deadline_ticks(timeout_ms)
        self._local = threading.local()
        self._closed = False

    @classmethod
    def from_bundle(
        cls,
        bundle: PolicyBundle,
        *,
        timeout_ms: float = DEFAULT_TIMEOUT_MS,
        use_opa: bool | None = None,
    ) -> WasmEngine:
        """Validate and compile ``bundle``; raises :class:`PolicyLoadError` if refused."""
        compiled = validate_bundle(bundle, use_opa=use_opa)
        return cls(compile_policy(bundle, compiled.projection), timeout_ms=timeout_ms)

    @property
    def revision(self) -> str:
        return self._policy.revision

    def decide(self, input_doc: Mapping[str, Any]) -> Decision:
        """Decide on the calling thread; a timeout, trap or bad input denies, never raises."""
        stamp = _outcome.stamp_for(self.name, self.revision, input_doc)
        if isinstance(stamp, Decision):
            return stamp
        if self._closed:
            return _outcome.unavailable(stamp, "the wasm engine is closed")
        _clock().ensure_ticking()
        instance: _Instance | None = getattr(self._local, "instance", None)
        started = time.perf_counter_ns()
        try:
            # Cannot fail once the digest took the whole input: rfc8785 is the stricter.
            payload = _input_json(project(input_doc, self._policy.projection))
            if instance is None:
                instance = self._local.instance = _Instance(self._policy)
                started = time.perf_counter_ns()  # the timeout is the evaluation's alone
            defined, value = instance.evaluate(payload, self._ticks)
        except Exception as error:  # a trap, an abort, a host builtin failing: fail closed
            self._local.instance = None  # its memory may be half-written; start afresh
            return _outcome.unavailable(stamp, self._failure(instance, error, started))
        if time.perf_counter_ns() - started > self._timeout_ns:
            return _outcome.unavailable(stamp, self._too_slow())
        return _outcome.from_result(stamp, value, defined=defined)

    def decide_many(self, input_docs: Sequence[Mapping[str, Any]]) -> list[Decision]:
        """:meth:`decide` for each document, in order, on the calling thread.

        The embedded engine batches to pay its thread hop once; this engine
        has no hop, and each evaluation keeps its own deadline.
        """
        return [self.decide(input_doc) for input_doc in input_docs]

    def close(self) -> None:
        """Refuse further decisions and let go of every thread's instance."""
        self._closed = True
        self._local = threading.local()

    def _failure(self, instance: _Instance | None, error: Exception, started: int) -> str:
        interrupted = (
            isinstance(error, wasmtime.Trap) and error.trap_code == wasmtime.TrapCode.INTERRUPT
        )
        if interrupted or time.perf_counter_ns() - started > self._timeout_ns:
            return self._too_slow()
        if instance is not None and instance.failure:
            return instance.failure
        return f"{type(error).__name__}: {error}"

    def _too_slow(self) -> str:
        return f"evaluation took over {self._timeout_ms:g} ms"
