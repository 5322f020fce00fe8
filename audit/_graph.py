"""Internal: Mermaid and Graphviz renderings of a :class:`audit.lineage.Lineage`.

Both draw the same graph: the artifact, its lifecycle steps chained in time
order, a pull summary, and one edge per relation (dependencies capped at
:data:`MAX_GRAPH_DEPENDENCIES`, with a "+N more" node).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audit.lineage import Lineage

MAX_GRAPH_DEPENDENCIES = 25  # keep rendered graphs readable; JSON has them all

Node = tuple[str, str]  # (id, label)
Edge = tuple[str, str, str]  # (from, to, label)


def _short_time(time: str) -> str:
    return time[:16].replace("T", " ") + "Z" if len(time) >= 16 else time


def _graph(lineage: Lineage) -> tuple[list[Node], list[Edge]]:
    nodes: list[Node] = [("artifact", lineage.ref)]
    edges: list[Edge] = []
    previous = "artifact"
    for i, step in enumerate(lineage.steps):
        who = f" by {step.actor}" if step.actor else ""
        nodes.append((f"s{i}", f"{step.kind} {_short_time(step.time)}{who}"))
        edges.append((previous, f"s{i}", ""))
        previous = f"s{i}"
    if lineage.pulls.count:
        pulls = lineage.pulls
        first, last = _short_time(pulls.first or ""), _short_time(pulls.last or "")
        label = f"pulled {pulls.count}x, {first} .. {last}"
        nodes.append(("pulls", label))
        edges.append(("artifact", "pulls", "pulled"))
    dependencies = 0
    for j, relation in enumerate(lineage.relations):
        if relation.kind == "depends-on":
            dependencies += 1
            if dependencies > MAX_GRAPH_DEPENDENCIES:
                continue
        nodes.append((f"r{j}", relation.target))
        edges.append(("artifact", f"r{j}", relation.kind))
    if dependencies > MAX_GRAPH_DEPENDENCIES:
        nodes.append(("more", f"+{dependencies - MAX_GRAPH_DEPENDENCIES} more dependencies"))
        edges.append(("artifact", "more", "depends-on"))
    return nodes, edges


def _mermaid_text(text: str) -> str:
    return (
        text.replace("&", "#amp;")
        .replace('"', "#quot;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
        .replace("\n", " ")
    )


def mermaid(lineage: Lineage) -> str:
    """``flowchart LR`` source."""
    nodes, edges = _graph(lineage)
    lines = ["flowchart LR"]
    lines += [f'    {node}["{_mermaid_text(label)}"]' for node, label in nodes]
    for source, target, label in edges:
        arrow = f" -->|{_mermaid_text(label)}| " if label else " --> "
        lines.append(f"    {source}{arrow}{target}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def dot(lineage: Lineage) -> str:
    """``digraph`` source."""
    nodes, edges = _graph(lineage)
    lines = ["digraph lineage {", "    rankdir=LR;", "    node [shape=box];"]
    lines += [f'    "{node}" [label="{_dot_text(label)}"];' for node, label in nodes]
    for source, target, label in edges:
        attrs = f' [label="{_dot_text(label)}"]' if label else ""
        lines.append(f'    "{source}" -> "{target}"{attrs};')
    lines.append("}")
    return "\n".join(lines) + "\n"
