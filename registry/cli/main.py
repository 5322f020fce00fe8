"""The ``arbiter`` command: ``serve`` runs the registry; the rest talk to one over HTTP.

Client commands read ``ARBITER_URL`` (default http://127.0.0.1:8080) and
``ARBITER_TOKEN``. They import nothing of the server, so they start quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from registry.cli import admin, audit, gc, lineage, policy, repo, retention, transfer, vulndb
from registry.cli.client import CliError, api, friendly, out

FIX_SETTINGS = "fix the option, the ARBITER_* variable or the ARBITER_CONFIG file"
FIX_POLICY = "fix the Rego in ARBITER_POLICY_DIR (default: the repository's rego/) and start again"
FIX_DATABASE = "check ARBITER_DATABASE_URL and that the database server is running"

app = typer.Typer(
    name="arbiter",
    help="Arbiter: a governed artifact registry.",
    no_args_is_help=True,
    # Locals in a traceback could include a token secret.
    pretty_exceptions_show_locals=False,
)
app.add_typer(admin.app, name="admin")
app.add_typer(repo.app, name="repo")
app.command()(transfer.push)
app.command()(transfer.pull)
app.add_typer(policy.app, name="policy")
app.add_typer(audit.app, name="audit")
app.command()(lineage.lineage)
app.add_typer(vulndb.app, name="vulndb")
app.command()(vulndb.findings)
app.add_typer(retention.app, name="retention")
app.command()(retention.restore)
app.command()(gc.gc)


@app.command()
@friendly
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default 8080).")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Data directory: database, blobs, keys (default ./var).")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes.")] = None,
    download_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Send whole OCI blobs from this port with sendfile (off by default).",
        ),
    ] = None,
) -> None:
    """Run the registry (settings also come from ARBITER_* variables and ARBITER_CONFIG)."""
    options = {
        "host": host,
        "port": port,
        "data": data,
        "workers": workers,
        "download_port": download_port,
    }
    _serve({k: v for k, v in options.items() if v is not None})


def _serve(overrides: dict[str, Any]) -> None:
    """Start the server; turn the start-up failures an operator can fix into one message."""
    from pydantic import ValidationError
    from sqlalchemy.exc import OperationalError

    from policies.errors import PolicyError
    from registry.config import Settings
    from registry.server import serve as run_server

    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise CliError(f"invalid settings: {problems}", FIX_SETTINGS, 2) from None
    try:
        run_server(settings)
    except PolicyError as error:
        raise CliError(f"the policy was refused: {error.diagnostics()}", FIX_POLICY) from None
    except OperationalError as error:
        reason = str(error.orig or error).splitlines()[0]
        raise CliError(f"cannot open the database: {reason}", FIX_DATABASE) from None
    except OSError as error:
        raise CliError(f"cannot start: {error}", FIX_SETTINGS) from None


@app.command()
@friendly
def whoami() -> None:
    """Show who the server takes you for: id, kind, roles and teams."""
    me = api("GET", "/whoami")
    if me["kind"] == "anonymous":
        out.print("anonymous (no token sent: set ARBITER_TOKEN)")
        return
    roles = ", ".join(me["roles"]) or "none"
    teams = ", ".join(me["teams"]) or "none"
    out.print(
        f"{me['id']} ({me['kind']})  roles: {roles}  teams: {teams}", soft_wrap=True, markup=False
    )


if __name__ == "__main__":
    app()
