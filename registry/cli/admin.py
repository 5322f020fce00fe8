"""``arbiter admin``: users, robots, teams, tokens and role bindings."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from registry.cli.client import CliError, api, err, friendly, out, segment

app = typer.Typer(help="Manage users, tokens, teams and roles.", no_args_is_help=True)
user_app = typer.Typer(help="Users and robots.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (shown once, stored as hashes).", no_args_is_help=True)
team_app = typer.Typer(
    help="Teams: roles granted to a team reach its members.", no_args_is_help=True
)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(team_app, name="team")

NO_USER = {404: "create the user first: 'arbiter admin user create NAME'"}


class Kind(StrEnum):
    user = "user"
    robot = "robot"


class Role(StrEnum):
    reader = "reader"
    writer = "writer"
    maintainer = "maintainer"
    admin = "admin"


def _table(columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(*columns)
    for row in rows:
        table.add_row(*(escape("" if cell is None else str(cell)) for cell in row))
    return table


# --- users -------------------------------------------------------------------


@user_app.command("create")
@friendly
def user_create(
    name: str,
    kind: Annotated[Kind, typer.Option(help="'robot' for CI and automation.")] = Kind.user,
) -> None:
    """Create a user or a robot account (then give it a token and a role)."""
    created = api("POST", "/users", json={"name": name, "kind": kind.value})
    out.print(f"created {created['kind']} {created['name']}", soft_wrap=True)


@user_app.command("list")
@friendly
def user_list() -> None:
    """List users and robots."""
    rows = api("GET", "/users")
    table = [[u["name"], u["kind"], "disabled" if u["disabled"] else "active"] for u in rows]
    out.print(_table(["name", "kind", "state"], table))


@user_app.command("disable")
@friendly
def user_disable(name: str) -> None:
    """Disable a user: its tokens stop working; its history stays in the audit log."""
    api("DELETE", f"/users/{segment(name)}", hints=NO_USER)
    out.print(f"disabled {name}", soft_wrap=True, markup=False)


# --- tokens ------------------------------------------------------------------


@token_app.command("create")
@friendly
def token_create(
    user: str,
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "",
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, help="Expire after this many days.")
    ] = None,
    scope: Annotated[list[str] | None, typer.Option(help="Restrict the token; repeatable.")] = None,
) -> None:
    """Create a token and print its secret once, alone on stdout (for scripts)."""
    body: dict[str, Any] = {"name": name, "scopes": scope or []}
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    created = api("POST", f"/users/{segment(user)}/tokens", json=body, hints=NO_USER)
    typer.echo(created["token"])
    err.print(
        f"token {created['id']} for {escape(user)}: save it now; it is not stored and "
        "cannot be shown again",
        soft_wrap=True,
    )


@token_app.command("list")
@friendly
def token_list(user: str) -> None:
    """List a user's tokens (never their secrets)."""
    rows = api("GET", f"/users/{segment(user)}/tokens", hints=NO_USER)
    table = [
        [
            t["id"],
            t["name"],
            ",".join(t["scopes"]) or "-",
            t["expires_at"] or "never",
            "expired" if t["expired"] else "valid",
        ]
        for t in rows
    ]
    out.print(_table(["id", "name", "scopes", "expires", "state"], table))


@token_app.command("revoke")
@friendly
def token_revoke(token_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Revoke a token by id ('arbiter admin token list USER' shows ids)."""
    api("DELETE", f"/tokens/{token_id}")
    out.print(f"revoked token {token_id}", soft_wrap=True)


# --- teams -------------------------------------------------------------------


@team_app.command("create")
@friendly
def team_create(name: str) -> None:
    """Create a team."""
    created = api("POST", "/teams", json={"name": name})
    out.print(f"created team {escape(created['name'])}", soft_wrap=True)


@team_app.command("add")
@friendly
def team_add(team: str, user: str) -> None:
    """Add a user to a team."""
    updated = api("POST", f"/teams/{segment(team)}/members", json={"user": user})
    members = ", ".join(updated["members"])
    out.print(f"team {updated['name']}: {members}", soft_wrap=True, markup=False)


@team_app.command("remove")
@friendly
def team_remove(team: str, user: str) -> None:
    """Remove a user from a team."""
    api("DELETE", f"/teams/{segment(team)}/members/{segment(user)}")
    out.print(f"removed {user} from {team}", soft_wrap=True, markup=False)


@team_app.command("list")
@friendly
def team_list() -> None:
    """List teams and their members."""
    rows = api("GET", "/teams")
    out.print(_table(["team", "members"], [[t["name"], ", ".join(t["members"])] for t in rows]))


# --- role bindings -----------------------------------------------------------


def _holder(user: str | None, team: str | None) -> dict[str, str]:
    if (user is None) == (team is None):
        raise CliError("give exactly one of --user or --team", exit_code=2)
    return {"user": user} if user is not None else {"team": team or ""}


@app.command()
@friendly
def grant(
    role: Role,
    user: Annotated[str | None, typer.Option(help="Grant to this user or robot.")] = None,
    team: Annotated[str | None, typer.Option(help="Grant to every member of this team.")] = None,
    repo: Annotated[
        str | None, typer.Option(help="Only in this repository (default: everywhere).")
    ] = None,
) -> None:
    """Bind a role to a user or team, globally or in one repository."""
    body: dict[str, Any] = {"role": role.value, "repository": repo, **_holder(user, team)}
    created = api("POST", "/role-bindings", json=body)
    holder = created["user"] or f"team {created['team']}"
    where = f"in {created['repository']}" if created["repository"] else "everywhere"
    out.print(
        f"granted {created['role']} to {holder} {where} (binding {created['id']})",
        soft_wrap=True,
        markup=False,
    )


@app.command()
@friendly
def grants(
    user: Annotated[str | None, typer.Option(help="Only this user's bindings.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's bindings.")] = None,
    repo: Annotated[str | None, typer.Option(help="Only bindings in this repository.")] = None,
) -> None:
    """List role bindings."""
    params = {k: v for k, v in {"user": user, "team": team, "repository": repo}.items() if v}
    rows = api("GET", "/role-bindings", params=params)
    table = [
        [b["id"], b["role"], b["user"] or f"team:{b['team']}", b["repository"] or "(global)"]
        for b in rows
    ]
    out.print(_table(["id", "role", "holder", "repository"], table))


@app.command()
@friendly
def revoke(binding_id: Annotated[int, typer.Argument(metavar="BINDING_ID")]) -> None:
    """Remove a role binding ('arbiter admin grants' shows ids)."""
    api("DELETE", f"/role-bindings/{binding_id}")
    out.print(f"removed role binding {binding_id}", soft_wrap=True)
