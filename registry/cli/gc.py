"""``arbiter gc``: reclaim blobs nothing references (safe while pushes run)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from registry.cli.client import api, friendly, out

BUSY = {409: "another process is collecting; try again when it ends"}


@friendly
def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would go.")] = False,
    grace_minutes: Annotated[
        int | None,
        typer.Option(min=0, help="Spare blobs younger than this (default 60)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Mark and sweep unreferenced blobs; print bytes reclaimed and usage per repository."""
    params = {"dry_run": str(dry_run).lower()}
    if grace_minutes is not None:
        params["grace_minutes"] = str(grace_minutes)
    report: dict[str, Any] = api("POST", "/gc", params=params, hints=BUSY)
    if as_json:
        out.print_json(json.dumps(report))
        return
    verb, unlink = ("would reclaim", "would remove") if dry_run else ("reclaimed", "removed")
    out.print(
        f"{verb} {report['bytes_reclaimed']} bytes in {report['deleted']} blobs "
        f"({report['scanned']} scanned, {report['referenced']} referenced, "
        f"{report['young']} inside the grace period, {report['rescued']} referenced again); "
        f"{unlink} {report['unlinked']} OCI image links no live manifest needs",
        soft_wrap=True,
    )
    table = Table("repository", "versions", "blobs", "bytes", title="usage")
    for name, usage in sorted(report["usage"].items()):
        table.add_row(
            escape(name), str(usage["versions"]), str(usage["blobs"]), str(usage["bytes"])
        )
    out.print(table)
