"""Private: the wasmtime calls a decision makes, without handing the GIL back and forth.

Not public API. wasmtime's Python binding calls its C library through a
``ctypes.CDLL``, which releases the GIL around every call and takes it back
afterwards; a call to a wasm function costs a dozen such calls (its type, its
parameter types, unrooting each argument). In a busy process, taking the GIL
back can wait for another thread's switch interval (5 ms): measured with four
threads deciding at once, throughput fell from 6400 to 1900 decisions per
second. This is the regopy story of :mod:`policies._compile` again, with the
same remedy: the short calls (memory size and address, the epoch deadline,
calls into the module from a host builtin) go through ``ctypes.PyDLL``
bindings of the same C functions, which keep the GIL; only the evaluation
itself, the one long call, releases it, so other threads run meanwhile and
the epoch ticker can interrupt a runaway evaluation.

This reaches into the binding's private layer (``wasmtime._ffi``, the handles
inside ``Store``, ``Memory`` and ``Func``), which is why ``pyproject.toml``
pins wasmtime to one major version; the tests exercise every path here.
"""

from __future__ import annotations

import ctypes

import wasmtime
from wasmtime import _ffi, _func

from policies._compile import _holding_the_gil

_HELD = _holding_the_gil(
    _ffi.dll,
    (
        "wasmtime_memory_data",
        "wasmtime_memory_data_size",
        "wasmtime_context_set_epoch_deadline",
        "wasmtime_func_call",
    ),
)
_RELEASING_CALL = _ffi.dll.wasmtime_func_call
_MAX_PARAMS = 8


class Calls:
    """The calls one store makes: memory, deadline and i32 functions."""

    def __init__(self, store: wasmtime.Store, memory: wasmtime.Memory) -> None:
        self._context = store._context()
        self._memory = ctypes.byref(memory._memory)
        self._params = (_ffi.wasmtime_val_t * _MAX_PARAMS)()
        for index in range(_MAX_PARAMS):
            self._params[index].kind = _ffi.WASMTIME_I32
        self._results = (_ffi.wasmtime_val_t * 1)()

    def set_deadline(self, ticks: int) -> None:
        """Trap once the engine's epoch has advanced ``ticks`` past now."""
        _HELD.wasmtime_context_set_epoch_deadline(self._context, ticks)

    def memory(self) -> tuple[int, int]:
        """The memory's current address in this process, and its size in bytes."""
        pointer = _HELD.wasmtime_memory_data(self._context, self._memory)
        size = _HELD.wasmtime_memory_data_size(self._context, self._memory)
        return int(ctypes.cast(pointer, ctypes.c_void_p).value or 0), int(size)

    def call(self, function: wasmtime.Func, *args: int, release_gil: bool = False) -> int:
        """``function(*args)`` for a function from i32s to one i32 (an address, here).

        Raises :class:`wasmtime.Trap` (interrupted, aborted, a host builtin
        raised) or :class:`wasmtime.WasmtimeError` (wrong arguments).
        """
        params = self._params
        for index, value in enumerate(args):
            params[index].of.i32 = value
        trap = ctypes.POINTER(_ffi.wasm_trap_t)()
        call = _RELEASING_CALL if release_gil else _HELD.wasmtime_func_call
        error = call(
            self._context,
            ctypes.byref(function._func),
            params,
            len(args),
            self._results,
            1,
            ctypes.byref(trap),
        )
        if error or trap:
            # A host function that raised left its exception in the binding's one
            # process-wide slot; the engine keeps its own record, so drop it here
            # rather than have some later, unrelated call raise it.
            _func.LAST_EXCEPTION = None
            if error:
                raise wasmtime.WasmtimeError._from_ptr(error)
            raise wasmtime.Trap._from_ptr(trap)
        return int(self._results[0].of.i32) & 0xFFFFFFFF


def write(address: int, data: bytes) -> None:
    """Copy ``data`` to a process address without releasing the GIL (unlike ``ctypes.memmove``)."""
    if data:
        (ctypes.c_char * len(data)).from_address(address).raw = data


def read(address: int, length: int) -> bytes:
    """``length`` bytes at a process address (``ctypes.string_at`` keeps the GIL)."""
    return ctypes.string_at(address, length)
