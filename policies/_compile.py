"""Private: compiling a bundle with regopy, and evaluating the compiled form.

Not public API; engines and validation use it. regopy's ``Interpreter.build``
turns modules and data into a compiled ``Bundle`` once per revision. One
interpreter must not be shared between threads (its input is interpreter
state: concurrent ``set_input`` calls mix up decisions), but any number of
interpreters may query the same compiled bundle at once, which is what the
embedded engine does with one interpreter per worker thread.
"""

from __future__ import annotations

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
        raise PolicyLoadError(f"policy bundle {bundle.root} does not compile")
    paths = input_paths(bundle.modules.values())
    return CompiledPolicy(compiled, bundle.revision, projection(paths))


def evaluate(interpreter: regopy.Interpreter, policy: CompiledPolicy, doc: Any) -> Any:
    """The entry point's value for ``doc``, or :data:`UNDEFINED`.

    Raises :class:`EvaluationError` for a runtime error (conflicting rule
    values, an unknown function) or an input regopy cannot represent.
    """
    try:
        interpreter.set_input(regopy.Input(project(doc, policy.projection)))
        output = interpreter.query_bundle_entrypoint(policy.compiled, REGOPY_ENTRYPOINT)
    except (regopy.RegoError, ValueError) as error:  # ValueError: input or output not JSON
        raise EvaluationError(str(error).strip() or type(error).__name__) from error
    text = str(output)
    if text == "undefined":
        return UNDEFINED
    if not output.results:
        raise EvaluationError(text)
    expressions = output.results[0].expressions
    return expressions[0] if expressions else UNDEFINED


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
