"""``arbiter vulndb import PATH`` and ``arbiter findings REPO/NAME/VERSION``.

The import runs beside the server on the same database (like ``arbiter audit
verify``): it reads the OSV zip or directory locally, writes the records in
batches with a progress bar and records a ``vulndb.import`` audit event. A
server notices the new revision and rescans stored SBOMs on its own.
``findings`` asks a server over HTTP, like every other client command.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from registry.cli.client import CliError, api, friendly, out

app = typer.Typer(
    help="Vulnerability data (OSV) for matching SBOM components.", no_args_is_help=True
)

DataOption = Annotated[
    Path | None,
    typer.Option("--data", help="Data directory (default: ARBITER_DATA, else ./var)."),
]


@app.command("import")
@friendly
def import_(
    path: Annotated[
        Path, typer.Argument(help="An OSV export zip (e.g. PyPI.zip), a directory of OSV JSON.")
    ],
    data: DataOption = None,
) -> None:
    """Import OSV records (idempotent: unchanged records are left alone)."""
    from registry.auth import Subject
    from registry.config import Settings
    from registry.services import build_services
    from registry.supplychain.errors import VulnDbError
    from registry.supplychain.vulndb.importer import import_path

    if not path.exists():
        raise CliError(f"{path} does not exist", "give an OSV export zip or a directory")
    settings = Settings(data=data) if data is not None else Settings()
    # Opening the services migrates the database; the import is recorded
    # through the governor like every other audited change.
    services = build_services(settings)
    importer = Subject(id="vulndb-import", kind="robot")
    try:
        with Progress(
            TextColumn("[bold]importing[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=out,
            transient=False,
        ) as bar:
            task = bar.add_task(escape(path.name), total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = import_path(
                services.governor,
                path,
                subject=importer,
                progress=advance,
                details={"os_user": getpass.getuser()},
            )
    except VulnDbError as error:
        raise CliError(error.message, "give an OSV export zip or a directory of OSV JSON") from None
    finally:
        services.close()
    out.print(
        f"{report.records} records: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.skipped} skipped; "
        f"revision {report.revision or 'none'}",
        soft_wrap=True,
        markup=False,
    )


@friendly
def findings(
    ref: Annotated[str, typer.Argument(help="REPO/NAME/VERSION (NAME may contain '/').")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON the API returns.")
    ] = False,
) -> None:
    """Show the vulnerability findings of an artifact version."""
    if ref.count("/") < 2:
        raise CliError("give the artifact as REPO/NAME/VERSION", "for example files/tool/1.0.0")
    found: dict[str, Any] = api("GET", f"/findings/{ref}")
    if as_json:
        out.print_json(data=found)
        return
    scan = found.get("scan", {})
    counts = found.get("counts", {})
    out.print(
        f"scan {scan.get('status')}"
        + (f" ({scan.get('reason')})" if scan.get("reason") else "")
        + "  "
        + "  ".join(f"{k} {v}" for k, v in counts.items()),
        markup=False,
        soft_wrap=True,
    )
    table = Table()
    table.add_column("advisory", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("score")
    table.add_column("package", overflow="fold")
    table.add_column("installed", overflow="fold")
    table.add_column("fixed in", overflow="fold")
    table.add_column("aliases", overflow="fold")
    for item in found.get("findings", []):
        table.add_row(
            *(
                escape(str(cell))
                for cell in (
                    item["id"],
                    item["severity"],
                    "" if item["score"] is None else item["score"],
                    item["package"],
                    item["installed"],
                    ", ".join(item["fixed"]),
                    ", ".join(item["aliases"]),
                )
            )
        )
    out.print(table)
