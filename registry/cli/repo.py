"""``arbiter repo``: create, list and delete repositories."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from registry.cli.client import api, friendly, out, segment

app = typer.Typer(help="Create, list and delete repositories.", no_args_is_help=True)

NOT_EMPTY = {409: "delete its artifacts first, or pick another name"}


class Format(StrEnum):
    generic = "generic"
    oci = "oci"
    pypi = "pypi"
    npm = "npm"
    maven = "maven"
    helm = "helm"


def _labels(pairs: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--label")
        labels[key] = value
    return labels


@app.command()
@friendly
def create(
    name: Annotated[str, typer.Argument(help="Lower case letters, digits, '.', '_', '-'.")],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Package format.")],
    description: Annotated[str, typer.Option(help="What the repository holds.")] = "",
    label: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE, may be repeated; policies read them.")
    ] = None,
) -> None:
    """Create a hosted repository."""
    body = {
        "name": name,
        "format": fmt.value,
        "description": description,
        "labels": _labels(label or []),
    }
    created = api("POST", "/repositories", json=body, hints={409: "choose another name"})
    out.print(f"created {created['format']} repository {created['name']}", soft_wrap=True)


@app.command("list")
@friendly
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List repositories."""
    rows: list[dict[str, Any]] = api("GET", "/repositories")
    if as_json:
        out.print_json(json.dumps(rows))
        return
    out.print(_table(rows))


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table("name", "format", "kind", "labels", "description", "created")
    for row in rows:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(row["labels"].items()))
        cells = (row["name"], row["format"], row["kind"], labels, row["description"])
        table.add_row(*(escape(cell) for cell in cells), row["created_at"][:19])
    if not rows:
        table.caption = "no repositories yet: 'arbiter repo create NAME --format generic'"
    return table


@app.command()
@friendly
def delete(name: Annotated[str, typer.Argument(help="An empty repository.")]) -> None:
    """Delete an empty repository (artifacts leave through governed deletes)."""
    api("DELETE", f"/repositories/{segment(name)}", hints=NOT_EMPTY)
    out.print(f"deleted repository {name}", soft_wrap=True)
