"""``arbiter audit``: verify, checkpoint, prove and export the audit log.

These commands read the database directly (``--data`` or ``ARBITER_DATA`` /
``ARBITER_DATABASE_URL``), so an operator can check the log with the server
stopped; ``verify-export`` needs neither database nor server.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from sqlalchemy import Connection

from audit import (
    AuditError,
    AuditVerificationError,
    EventFilter,
    NoteSigner,
    create_checkpoint,
    export_events,
    load_or_create_signing_key,
    prove_consistency,
    prove_inclusion,
    query_events,
    render_csv,
    render_json,
    verify_database,
    verify_export,
)
from policies import RecordedDecision
from registry.cli.client import CliError, friendly
from registry.config import Settings
from registry.db import Database

app = typer.Typer(help="Verify, checkpoint, prove and export the audit log.", no_args_is_help=True)
out = Console()

DataOption = Annotated[
    Path | None,
    typer.Option("--data", help="Data directory (default: ARBITER_DATA, else ./var)."),
]


def _settings(data: Path | None) -> Settings:
    return Settings(data=data) if data is not None else Settings()


@contextmanager
def _log(data: Path | None, *, write: bool = False) -> Iterator[tuple[Connection, NoteSigner]]:
    settings = _settings(data)
    if settings.is_sqlite and not (settings.data / "arbiter.db").exists():
        raise CliError(f"no database in {settings.data}", "pass --data DIR or set ARBITER_DATA")
    db = Database(settings.database_url)
    signer = load_or_create_signing_key(settings.audit_key_path or settings.data / "audit.key")
    try:
        with db.writer() if write else db.reader() as session:
            yield session.connection(), signer
    except AuditError as error:
        raise CliError(
            str(error), "run 'arbiter audit verify' to find the first bad event"
        ) from error
    finally:
        db.dispose()


@app.command()
@friendly
def verify(data: DataOption = None, deep: bool = False) -> None:
    """Walk the chain, recompute the tree, check every checkpoint; exit 0 only if all holds."""
    settings = _settings(data)
    signer = load_or_create_signing_key(settings.audit_key_path or settings.data / "audit.key")
    with out.status("verifying the audit log ..."):
        try:
            report = verify_database(settings.database_url, signer.verifier(), deep=deep)
        except AuditVerificationError as error:
            raise CliError(f"audit log NOT verified: {error}", "restore from an export") from error
    out.print(
        f"[green]verified[/green] {report.events} events, {report.checkpoints} checkpoints, "
        f"root {report.root_hash} ({report.events_per_second:,.0f} events/s)"
    )


@app.command()
@friendly
def checkpoint(data: DataOption = None) -> None:
    """Sign a checkpoint of the log as it is now."""
    with _log(data, write=True) as (conn, signer):
        made = create_checkpoint(conn, signer)
    out.print(made.note, highlight=False, end="")


@app.command()
@friendly
def prove(
    seq: Annotated[int | None, typer.Option(help="Inclusion proof for this event.")] = None,
    old_size: Annotated[int | None, typer.Option(help="Consistency proof from this size.")] = None,
    tree_size: Annotated[int | None, typer.Option(help="Tree size (default: latest).")] = None,
    data: DataOption = None,
) -> None:
    """Print an inclusion proof (--seq) or a consistency proof (--old-size) as JSON."""
    if (seq is None) == (old_size is None):
        raise CliError("give exactly one of --seq and --old-size")
    with _log(data) as (conn, _signer):
        if seq is not None:
            proof = prove_inclusion(conn, seq, tree_size).to_json()
        else:
            proof = prove_consistency(conn, old_size or 0, tree_size).to_json()
    out.print_json(data=proof)


@app.command()
@friendly
def export(
    out_file: Annotated[Path, typer.Option("--out", help="JSON Lines file to write.")],
    since: Annotated[datetime | None, typer.Option(help="First event time (UTC).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Last event time (UTC).")] = None,
    data: DataOption = None,
) -> None:
    """Write events with the covering checkpoint and proofs, for offline verification."""
    with _log(data, write=True) as (conn, signer), out.status(f"exporting to {out_file} ..."):
        create_checkpoint(conn, signer)  # the export must be covered by a signed checkpoint
        summary = export_events(conn, out_file, since=since, until=until)
    out.print(
        f"exported {summary.count} events (seq {summary.first_seq}..{summary.last_seq}) "
        f"under checkpoint {summary.tree_size} in {summary.seconds:.1f}s"
    )


@app.command("verify-export")
@friendly
def verify_export_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    public_key: Annotated[
        str, typer.Option(help="The key from GET /api/v1/audit/public-key, or @FILE holding it.")
    ],
) -> None:
    """Verify an export offline: no database, no server."""
    key = Path(public_key[1:]).read_text().strip() if public_key.startswith("@") else public_key
    try:
        report = verify_export(file, key)
    except AuditError as error:
        raise CliError(f"export NOT verified: {error}", "ask for a fresh export") from error
    out.print(
        f"[green]verified[/green] {report.count} events (seq {report.first_seq}.."
        f"{report.last_seq}) against checkpoint {report.tree_size} of {report.origin}"
    )


@app.command()
@friendly
def events(
    actor: str | None = None,
    action: str | None = None,
    repository: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int | None = None,
    fmt: Annotated[Literal["json", "csv"], typer.Option("--format")] = "json",
    data: DataOption = None,
) -> None:
    """Print a filtered view of the events as JSON or CSV."""
    flt = EventFilter(
        actor=actor,
        action=action,
        repository=repository,
        outcome=outcome,
        since=since,
        until=until,
        limit=limit,
    )
    with _log(data) as (conn, _signer):
        (render_csv if fmt == "csv" else render_json)(query_events(conn, flt), sys.stdout)


def recorded_decisions(data: Path | None, last: int) -> list[RecordedDecision]:
    """The last ``last`` policy decisions in the log, with their inputs (for ``policy diff``)."""
    ring: deque[RecordedDecision] = deque(maxlen=last)
    with _log(data) as (conn, _signer):
        for event in query_events(conn, EventFilter()):
            record = RecordedDecision.from_event(event.to_dict())
            if record is not None:
                ring.append(record)
    return list(ring)
