"""The ``arbiter`` command: ``serve`` runs the registry; the rest talk to one over HTTP.

Client commands read ``ARBITER_URL`` (default http://127.0.0.1:8080) and
``ARBITER_TOKEN``. They import nothing of the server, so they start quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from registry.cli import admin, repo, transfer
from registry.cli.client import CliError, api, friendly, out

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
# TODO(lead): mount `registry/cli/policy.py` here once it lands:
#   from registry.cli import policy; app.add_typer(policy.app, name="policy")


@app.command()
@friendly
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default 8080).")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Data directory: database, blobs, keys (default ./var).")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes.")] = None,
) -> None:
    """Run the registry (settings also come from ARBITER_* variables and ARBITER_CONFIG)."""
    from pydantic import ValidationError

    from registry.config import Settings
    from registry.server import serve as run_server

    options = {"host": host, "port": port, "data": data, "workers": workers}
    overrides: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise CliError(
            f"invalid settings: {problems}", "fix the option or ARBITER_* variable", 2
        ) from None
    run_server(settings)


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
    out.print(f"{me['id']} ({me['kind']})  roles: {roles}  teams: {teams}", markup=False)


if __name__ == "__main__":
    app()
