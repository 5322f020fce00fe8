"""``arbiter retention`` and ``arbiter restore``: cleanup rules, previews, runs, reports.

Client commands over the API (``ARBITER_URL``, ``ARBITER_TOKEN``); they import
nothing of the server. ``run --dry-run`` lists what a run would delete now,
with the rule that selects each version and the bytes; a real run is started
on the server and followed until it ends.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from registry.cli.client import CliError, api, call, connect, friendly, out

app = typer.Typer(help="Cleanup rules, previews, runs and reports.", no_args_is_help=True)
rules_app = typer.Typer(help="Show and change the rule set (every change is a new version).")
app.add_typer(rules_app, name="rules")

POLL_S = 0.5
CONFIRM = {409: "check 'arbiter retention run --dry-run', then add --confirm if it is right"}
RepoOption = Annotated[str | None, typer.Option("--repo", help="Only this repository.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def _versions(title: str, entries: list[dict[str, Any]], *, reasons: bool = False) -> Table:
    table = Table("repository", "package", "version", "rule", "why", "bytes", title=title)
    for entry in entries:
        why = "; ".join(entry.get("policy_reasons", [])) if reasons else entry.get("reason", "")
        cells = (entry["repository"], entry["package"], entry["version"], entry["rule"], why)
        table.add_row(*(escape(str(cell)) for cell in cells), _size(entry["bytes"]))
    return table


@app.command()
@friendly
def run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go.")] = False,
    repo: RepoOption = None,
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Allow a run that empties a repository.")
    ] = False,
    kept: Annotated[bool, typer.Option("--kept", help="Also list what rules keep.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Run the rules now, or with --dry-run preview every deletion, its rule and its bytes."""
    params: dict[str, str] = {}
    if repo:
        params["repository"] = repo
    if dry_run:
        preview = api("GET", "/retention/preview", params={**params, "kept": str(kept).lower()})
        if as_json:
            out.print_json(json.dumps(preview))
            return
        _print_preview(preview)
        return
    if confirm:
        params["confirm"] = "true"
    with connect() as client:
        started = call(client, "POST", "/retention/runs", params=params, hints=CONFIRM)
        run_id = started["id"]
        with out.status(f"retention run {run_id} ..."):
            while (found := call(client, "GET", f"/retention/runs/{run_id}"))[
                "status"
            ] == "running":
                time.sleep(POLL_S)
    if as_json:
        out.print_json(json.dumps(found))
        return
    _print_run(found)
    if found["status"] != "finished":
        raise CliError(f"run {run_id} {found['status']}: {found['error']}", "see the server log")


def _print_preview(preview: dict[str, Any]) -> None:
    deletions = preview["deletions"]
    if deletions:
        out.print(_versions("would delete", deletions))
    if preview.get("kept"):
        out.print(_versions("kept by rule", preview["kept"]))
    out.print(
        f"{len(deletions)} of {preview['versions']} versions would be deleted "
        f"({_size(preview['bytes_reclaimed'])}); rule set version {preview['rule_set_version']}",
        soft_wrap=True,
    )
    if preview["deletes_everything"]:
        names = ", ".join(preview["deletes_everything"])
        out.print(f"[bold yellow]this would empty {escape(names)}: a run needs --confirm[/]")


def _print_run(found: dict[str, Any]) -> None:
    report = found.get("report") or {}
    for section, title, reasons in (
        ("deleted", "deleted (restorable until purged)", False),
        ("vetoed", "vetoed by the policy", True),
        ("purged", "purged", False),
        ("errors", "errors", True),
    ):
        if report.get(section):
            out.print(_versions(title, report[section], reasons=reasons))
    out.print(
        f"run {found['id']} {found['status']}: {found['deleted']} deleted "
        f"({_size(found['bytes_deleted'])}), {found['vetoed']} vetoed, {found['kept']} kept by "
        f"rule, {found['purged']} purged; rule set version {found['rule_set_version']}",
        soft_wrap=True,
    )


@app.command()
@friendly
def runs(as_json: JsonOption = False) -> None:
    """List recent runs."""
    rows: list[dict[str, Any]] = api("GET", "/retention/runs")
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "status", "trigger", "repository", "deleted", "vetoed", "kept", "purged")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["status"],
            row["trigger"],
            escape(row["repository"] or "*"),
            *(str(row[k]) for k in ("deleted", "vetoed", "kept", "purged")),
        )
    out.print(table)


@app.command()
@friendly
def report(run_id: Annotated[int, typer.Argument(help="The run.")]) -> None:
    """Print a run's JSON report: deleted, vetoed and kept-by-rule versions."""
    out.print_json(json.dumps(api("GET", f"/retention/runs/{run_id}")))


@app.command()
@friendly
def trash(repo: RepoOption = None, as_json: JsonOption = False) -> None:
    """List soft-deleted versions that can still be restored."""
    rows: list[dict[str, Any]] = api(
        "GET", "/retention/trash", params={"repository": repo} if repo else None
    )
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("repository", "package", "version", "rule", "deleted", "purged after")
    for row in rows:
        cells = (row["repository"], row["package"], row["version"], row["rule_id"])
        table.add_row(*(escape(c) for c in cells), row["deleted_at"][:19], row["purge_after"][:19])
    out.print(table)


@friendly
def restore(
    ref: Annotated[str, typer.Argument(help="REPO/NAME/VERSION (NAME may contain '/').")],
) -> None:
    """Bring back a version retention deleted, before it is purged."""
    repository, _, rest = ref.partition("/")
    package, _, version = rest.rpartition("/")
    if not repository or not package or not version:
        raise CliError("give the artifact as REPO/NAME/VERSION", "for example files/tool/1.0.0")
    body = {"repository": repository, "package": package, "version": version}
    restored = api("POST", "/retention/restore", json=body)
    out.print(f"restored {ref}", soft_wrap=True, markup=False)
    for note in restored["skipped"]:
        out.print(f"note: {note}", soft_wrap=True, markup=False)


# -- rules -------------------------------------------------------------------------


@rules_app.command("show")
@friendly
def rules_show(
    version: Annotated[int | None, typer.Option(help="An older version.")] = None,
) -> None:
    """Print the rule set (JSON)."""
    path = "/retention/rules" if version is None else f"/retention/rules/versions/{version}"
    out.print_json(json.dumps(api("GET", path)))


@rules_app.command("history")
@friendly
def rules_history() -> None:
    """Every version of the rule set: who changed it, when and why."""
    rows: list[dict[str, Any]] = api("GET", "/retention/rules/history")
    table = Table("version", "created", "by", "rules", "comment")
    for row in rows:
        table.add_row(
            str(row["version"]),
            (row["created_at"] or "")[:19],
            escape(row["created_by"]),
            escape(", ".join(row["rules"])),
            escape(row["comment"]),
        )
    out.print(table)


@rules_app.command("set")
@friendly
def rules_set(
    file: Annotated[Path, typer.Argument(help="A JSON rule set, or - for stdin.")],
    comment: Annotated[str, typer.Option(help="Why it changes (kept with the version).")] = "",
) -> None:
    """Replace the whole rule set (rules, schedule, recovery_days)."""
    text = sys.stdin.read() if str(file) == "-" else file.read_text()
    try:
        document = json.loads(text)
    except ValueError as error:
        raise CliError(
            f"{file} is not JSON: {error}", "see 'arbiter retention rules show'"
        ) from None
    stored = api("PUT", "/retention/rules", json={**document, "comment": comment})
    out.print(f"rule set version {stored['version']} stored", soft_wrap=True)


@rules_app.command("add")
@friendly
def rules_add(
    name: Annotated[str, typer.Option(help="The rule's name (its id derives from it).")],
    kind: Annotated[str, typer.Option(help="cleanup or protect.")] = "cleanup",
    repo: Annotated[list[str] | None, typer.Option(help="Repository pattern (glob).")] = None,
    package: Annotated[list[str] | None, typer.Option(help="Package pattern (glob).")] = None,
    include: Annotated[str | None, typer.Option(help="Version regex to include.")] = None,
    exclude: Annotated[str | None, typer.Option(help="Version regex to exclude.")] = None,
    tags_include: Annotated[str | None, typer.Option(help="Tag regex to include.")] = None,
    tags_exclude: Annotated[str | None, typer.Option(help="Tag regex to exclude.")] = None,
    keep_last: Annotated[int | None, typer.Option(help="Keep the N most recent.")] = None,
    by_version: Annotated[
        bool, typer.Option("--by-version", help="Most recent by version order.")
    ] = False,
    older_than_days: Annotated[int | None, typer.Option(help="Pushed N+ days ago.")] = None,
    not_pulled_days: Annotated[int | None, typer.Option(help="Not pulled for N days.")] = None,
    never_pulled: Annotated[bool, typer.Option(help="Only never pulled.")] = False,
    untagged: Annotated[bool, typer.Option(help="Only untagged (OCI).")] = False,
    max_bytes: Annotated[int | None, typer.Option(help="Repository quota in bytes.")] = None,
    pushed_within_days: Annotated[int | None, typer.Option(help="protect: pushed within.")] = None,
    pulled_within_days: Annotated[int | None, typer.Option(help="protect: pulled within.")] = None,
) -> None:
    """Add a rule (or replace the one with the same id): a new version of the rule set."""
    rule: dict[str, Any] = {"name": name, "kind": kind, "never_pulled": never_pulled}
    rule["untagged"] = untagged
    optional = {
        "repositories": repo,
        "packages": package,
        "include": include,
        "exclude": exclude,
        "tags_include": tags_include,
        "tags_exclude": tags_exclude,
        "keep_last": keep_last,
        "older_than_days": older_than_days,
        "not_pulled_days": not_pulled_days,
        "max_bytes": max_bytes,
        "pushed_within_days": pushed_within_days,
        "pulled_within_days": pulled_within_days,
    }
    rule.update({key: value for key, value in optional.items() if value is not None})
    if by_version:
        rule["order"] = "version"
    if kind == "protect":
        rule.pop("never_pulled")
        rule.pop("untagged")
    stored = api("POST", "/retention/rules/rules", json=rule)
    out.print(f"rule set version {stored['version']} stored", soft_wrap=True)


@rules_app.command("remove")
@friendly
def rules_remove(rule_id: Annotated[str, typer.Argument(help="The rule's id.")]) -> None:
    """Remove a rule: a new version of the rule set."""
    stored = api("DELETE", f"/retention/rules/rules/{rule_id}")
    out.print(f"rule set version {stored['version']} stored", soft_wrap=True)
