"""``arbiter lineage REPO/NAME/VERSION``: an artifact's life as the audit log tells it."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from registry.cli.client import API, CliError, connect, friendly, out, server_error


@friendly
def lineage(
    ref: Annotated[str, typer.Argument(help="REPO/NAME/VERSION (NAME may contain '/').")],
    fmt: Annotated[
        Literal["json", "mermaid", "dot"], typer.Option("--format", help="Output format.")
    ] = "json",
) -> None:
    """Print the lineage of an artifact version as JSON, Mermaid or Graphviz DOT."""
    if ref.count("/") < 2:
        raise CliError("give the artifact as REPO/NAME/VERSION", "for example files/tool/1.0.0")
    with connect() as client:
        response = client.get(f"{API}/lineage/{ref}", params={"format": fmt})
    if response.is_error:
        raise server_error(response)
    if fmt == "json":
        out.print_json(response.text)
    else:
        out.print(response.text, highlight=False, markup=False, end="")
