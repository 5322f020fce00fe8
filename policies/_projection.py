"""Private: the part of the input document a set of Rego modules can read.

Not public API. Handing a document to regopy costs about a microsecond per
JSON node, so an input with an SBOM of 200 purls costs more to hand over than
to evaluate. When every reference to ``input`` in the policy modules is a
static path (``input.artifact.sbom.licenses``, ``input.subject``), subtrees no
module names cannot change the decision, and the embedded engine leaves them
out. A bare ``input`` anywhere (passed to a function, ``walk(input)``,
``input[x]``) makes the projection the whole document. The differential test
against the OPA server, which always receives the whole input, guards this.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# A projection is a tree of the input keys to keep; a ``None`` leaf keeps the
# whole subtree below it, and a ``None`` root keeps the whole document.
Projection = dict[str, Any] | None

_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`|#[^\n]*')
_INPUT_REF = re.compile(r"(?<![\w.])input((?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?!\w)")
_INPUT_TOKEN = re.compile(r"(?<![\w.])input(?!\w)")


def input_paths(sources: Iterable[str]) -> list[tuple[str, ...]] | None:
    """Every static ``input`` path in ``sources``; ``None`` when one reference is dynamic."""
    paths: list[tuple[str, ...]] = []
    for source in sources:
        code = _STRING_OR_COMMENT.sub('""', source)
        static = [match.group(1) for match in _INPUT_REF.finditer(code)]
        if len(static) != len(_INPUT_TOKEN.findall(code)):
            return None  # input[...] somewhere: only the whole document is safe
        for dotted in static:
            if not dotted:
                return None  # bare input
            paths.append(tuple(dotted[1:].split(".")))
    return paths


def projection(paths: list[tuple[str, ...]] | None) -> Projection:
    """The key tree to keep for ``paths``; ``None`` keeps everything."""
    if paths is None:
        return None
    tree: dict[str, Any] = {}
    for path in sorted(paths, key=len):
        node = tree
        for index, key in enumerate(path):
            if key in node and node[key] is None:
                break  # an ancestor already keeps the whole subtree
            if index == len(path) - 1:
                node[key] = None
            else:
                node = node.setdefault(key, {})
    return tree


def project(doc: Any, tree: Projection) -> Any:
    """``doc`` cut down to ``tree``; values that are not objects are kept whole."""
    if tree is None or not isinstance(doc, Mapping):
        return doc
    return {key: project(doc[key], sub) for key, sub in tree.items() if key in doc}
