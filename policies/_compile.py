"""Private: compiling a bundle with regopy, and evaluating the compiled form.

Not public API; engines and validation use it. regopy's ``Interpreter.build``
turns modules and data into a compiled ``Bundle`` once per revision. One
interpreter must not be shared between threads (its input is interpreter
state: concurrent ``set_input`` calls mix up decisions), but any number of
interpreters may query the same compiled bundle at once, which is what the
embedded engine does with one interpreter per worker thread.
"""

from __future__ import annotations

import ctypes
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import regopy

from policies._projection import Projection, input_paths, project, projection
from policies.bundle import PolicyBundle
from policies.decision import ENTRYPOINT
from policies.errors import PolicyLoadError, Problem

# regopy names entry points as document paths: data.registry.decision.
REGOPY_ENTRYPOINT = ENTRYPOINT.removeprefix("data.").replace(".", "/")
_ENTRYPOINT = REGOPY_ENTRYPOINT.encode()

_ERROR = re.compile(r"\(error\s+(?:(\d+):)?")
_LOCATION = re.compile(r"\|(\d+)\|(\d+)")
_MESSAGE = re.compile(r"\(errormsg\s+(\d+):")


class EvaluationError(Exception):
    """regopy answered with an error instead of a value (runtime policy error)."""


class Undefined:
    """The entry point produced no value for this input."""


UNDEFINED = Undefined()


@dataclass(frozen=True)
class CompiledPolicy:
    """A bundle compiled by regopy, with the part of the input its modules read."""

    compiled: regopy.Bundle
    revision: str
    projection: Projection


def new_interpreter() -> regopy.Interpreter:
    """An interpreter that keeps quiet: errors come back as values, not stdout noise."""
    interpreter = regopy.Interpreter()
    interpreter.log_level = regopy.LogLevel.NONE
    return interpreter


def compile_policy(bundle: PolicyBundle) -> CompiledPolicy:
    """Compile the bundle's modules and data; :class:`PolicyLoadError` with file and line."""
    interpreter = new_interpreter()
    try:
        interpreter.add_data_json(json.dumps(dict(bundle.data)))
        for name, source in sorted(bundle.modules.items()):
            interpreter.add_module(name, source)
        compiled = interpreter.build(None, [REGOPY_ENTRYPOINT])
    except regopy.RegoError as error:
        problems = tuple(parse_errors(str(error), bundle.modules)) or (
            Problem(str(bundle.root), 0, str(error).strip()),
        )
        raise PolicyLoadError(f"policy bundle {bundle.root} does not compile", problems) from error
    if not compiled.ok():
        raise PolicyLoadError(
            f"policy bundle {bundle.root} does not compile", _bundle_problems(compiled, bundle)
        )
    paths = input_paths(bundle.modules.values())
    return CompiledPolicy(compiled, bundle.revision, projection(paths))


def evaluate(interpreter: regopy.Interpreter, policy: CompiledPolicy, doc: Any) -> Any:
    """The entry point's value for ``doc``, or :data:`UNDEFINED`.

    Raises :class:`EvaluationError` for a runtime error (conflicting rule
    values, an unknown function) or an input regopy cannot represent.
    """
    try:
        _set_input(interpreter, project(doc, policy.projection))
        text = _query(interpreter, policy.compiled)
    except (regopy.RegoError, ValueError, TypeError) as error:
        raise EvaluationError(str(error).strip() or type(error).__name__) from error
    if text == "undefined":
        return UNDEFINED
    try:
        result = json.loads(text)
    except json.JSONDecodeError as error:  # seen when regopy mis-renders a string
        raise EvaluationError(f"regopy returned malformed JSON: {text[:200]}") from error
    expressions = result.get("expressions") if isinstance(result, dict) else None
    return expressions[0] if expressions else UNDEFINED


# regopy builds inputs and reads outputs through its ctypes library one call per
# JSON node, with a Python wrapper around each call; calling the same C functions
# directly halves the cost of handing over an input. Only the functions regopy
# itself declares are used, with the argument types it declared.
_LIB = regopy.rego_shared.rego
_OK = 0
_SHORT_CALLS = (
    "regoNewInput",
    "regoInputString",
    "regoInputObjectItem",
    "regoInputObject",
    "regoInputArray",
    "regoInputBoolean",
    "regoInputInt",
    "regoInputFloat",
    "regoInputNull",
    "regoSetInput",
    "regoFreeInput",
    "regoOutputJSONSize",
    "regoOutputJSON",
    "regoOutputOk",
    "regoFreeOutput",
)


def _holding_the_gil(library: ctypes.CDLL, names: tuple[str, ...]) -> Any:
    """The same C functions, called without releasing the GIL (``ctypes.PyDLL``).

    A ``CDLL`` call releases the GIL and takes it back afterwards. An input is
    handed over in one call per JSON node (about 60 for a pull), each a few
    hundred nanoseconds of C, and in a busy server taking the GIL back can
    wait for another thread's switch interval (5 ms): measured in the server,
    decisions took a median of 1.2 ms and a 90th percentile of 20 ms against
    0.4 ms in isolation. Reading the output is four more short calls. The
    query itself, the one long call, still releases the GIL.
    """
    holding = ctypes.PyDLL(library._name)
    functions = type("InputFunctions", (), {})()
    for name in names:
        declared = getattr(library, name)
        function = getattr(holding, name)
        function.argtypes, function.restype = declared.argtypes, declared.restype
        setattr(functions, name, function)
    return functions


_SHORT = _holding_the_gil(_LIB, _SHORT_CALLS)


def _set_input(interpreter: regopy.Interpreter, value: Any) -> None:
    handle = _SHORT.regoNewInput()
    try:
        _add(handle, value)
        if _SHORT.regoSetInput(interpreter._impl, handle) != _OK:
            raise EvaluationError("regopy refused the input document")
    finally:
        _SHORT.regoFreeInput(handle)


def _add(handle: Any, value: Any) -> None:
    """Push ``value`` onto regopy's input stack (post-order, as its C API expects)."""
    kind = type(value)
    if kind is str:
        status = _SHORT.regoInputString(handle, value.encode("utf-8"))
    elif kind is dict:
        for key, item in value.items():
            _add(handle, key)
            _add(handle, item)
            _SHORT.regoInputObjectItem(handle)
        status = _SHORT.regoInputObject(handle, len(value))
    elif kind is list or kind is tuple:
        for item in value:
            _add(handle, item)
        status = _SHORT.regoInputArray(handle, len(value))
    elif kind is bool:
        status = _SHORT.regoInputBoolean(handle, value)
    elif kind is int:
        status = _SHORT.regoInputInt(handle, value)
    elif kind is float:
        status = _SHORT.regoInputFloat(handle, value)
    elif value is None:
        status = _SHORT.regoInputNull(handle)
    else:
        raise ValueError(f"cannot give a {kind.__name__} to a policy")
    if status != _OK:
        raise EvaluationError(f"regopy refused an input value of type {kind.__name__}")


def _query(interpreter: regopy.Interpreter, compiled: regopy.Bundle) -> str:
    output = _LIB.regoBundleQueryEntrypoint(interpreter._impl, compiled._impl, _ENTRYPOINT)
    if not output:
        raise EvaluationError(regopy.rego_shared.rego_get_error(interpreter._impl))
    try:
        size = _SHORT.regoOutputJSONSize(output)
        buffer = ctypes.create_string_buffer(size)
        if _SHORT.regoOutputJSON(output, buffer, size) != _OK:
            raise EvaluationError("regopy could not render the result")
        text = buffer.value.decode("utf-8")
        if not _SHORT.regoOutputOk(output):
            raise EvaluationError(text or "evaluation failed")
        return text
    finally:
        _SHORT.regoFreeOutput(output)


def _bundle_problems(compiled: regopy.Bundle, bundle: PolicyBundle) -> tuple[Problem, ...]:
    """Problems from a bundle that failed to build: its root node lists the errors."""
    root = compiled.node()
    text = "\n".join(root.at(index).json() for index in range(len(root)))
    return tuple(parse_errors(text, bundle.modules)) or (
        Problem(str(bundle.root), 0, "regopy could not build the bundle"),
    )


def parse_errors(text: str, sources: Mapping[str, str]) -> Iterator[Problem]:
    """Problems from regopy's error tree: ``(error N:file|offset|len (errormsg N:text))``.

    regopy reports byte offsets; the line and column come from the source.
    """
    position = 0
    while match := _ERROR.search(text, position):
        file, position = _counted(text, match)
        line = column = 0
        location = _LOCATION.match(text, position)
        if location and file in sources:
            line, column = _line_and_column(sources[file], int(location.group(1)))
        message_match = _MESSAGE.search(text, position)
        if message_match is None:
            return
        message, position = _counted(text, message_match)
        yield Problem(file or "policy", line, message, column)


def _counted(text: str, match: re.Match[str]) -> tuple[str, int]:
    """A length-prefixed string (``8:a/x.rego``) after ``match``, and the position after it."""
    if match.group(1) is None:
        return "", match.end()
    length = int(match.group(1))
    return text[match.end() : match.end() + length], match.end() + length


def _line_and_column(source: str, offset: int) -> tuple[int, int]:
    data = source.encode("utf-8")[:offset].decode("utf-8", errors="replace")
    return data.count("\n") + 1, len(data) - data.rfind("\n")
