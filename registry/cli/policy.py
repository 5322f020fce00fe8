"""``arbiter policy``: the policy author's loop from the command line.

``test`` runs the Rego unit tests, ``eval`` decides one input file, ``diff``
replays recorded decisions against a candidate directory, and ``reload`` asks
a running registry to put the policy directory's current revision in force.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from policies import (
    PolicyError,
    PolicyLoadError,
    default_policy_dir,
    diff_decisions,
    load_engine,
    read_recorded,
)
from policies.diff import ImpactReport

app = typer.Typer(help="Test, evaluate, compare and reload Rego policies.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

DEFAULT_URL = "http://127.0.0.1:8080"
RELOAD_PATH = "/api/v1/policy/reload"

PolicyDirOption = Annotated[
    Path | None,
    typer.Option(
        "--policy-dir",
        help="Policy directory (default: ARBITER_POLICY_DIR, else the repository's rego/).",
    ),
]


def policy_dir(given: Path | None) -> Path:
    """The directory to use: the option, else ARBITER_POLICY_DIR, else the shipped rego/."""
    if given is not None:
        return given
    from_env = os.environ.get("ARBITER_POLICY_DIR")
    return Path(from_env) if from_env else default_policy_dir()


def fail(message: str, hint: str | None = None, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    if hint:
        err.print(f"hint: {hint}", highlight=False)
    return typer.Exit(code)


@app.command()
def test(
    directory: PolicyDirOption = None,
    coverage: Annotated[bool, typer.Option(help="Fail under 90 % coverage.")] = False,
) -> None:
    """Run the Rego unit tests (``opa test``) of the policy directory."""
    opa = shutil.which("opa")
    if opa is None:
        raise fail("the opa binary is not on PATH", "run scripts/install-tools.sh")
    command = [opa, "test", str(policy_dir(directory)), "-v"]
    if coverage:
        command = [opa, "test", str(policy_dir(directory)), "--coverage", "--threshold", "90"]
    completed = subprocess.run(command, check=False)
    raise typer.Exit(completed.returncode)


@app.command("eval")
def evaluate(
    action: Annotated[str, typer.Option(help="The action to decide: push, pull, delete, ...")],
    input_file: Annotated[
        Path, typer.Option("--input", exists=True, dir_okay=False, help="Input document (JSON).")
    ],
    directory: PolicyDirOption = None,
    engine: Annotated[str, typer.Option(help="embedded, wasm or opa.")] = "embedded",
    opa_url: Annotated[
        str | None, typer.Option(envvar="ARBITER_OPA_URL", help="OPA server for --engine opa.")
    ] = None,
) -> None:
    """Decide one input document and print the decision and its reasons."""
    try:
        doc = json.loads(input_file.read_text())
    except json.JSONDecodeError as error:
        raise fail(f"{input_file} is not JSON: {error}") from error
    if not isinstance(doc, dict):
        raise fail(f"{input_file} must hold a JSON object (the policy input document)")
    doc["action"] = action
    decider = _engine(engine, policy_dir(directory), opa_url)
    try:
        decision = decider.decide(doc)
    finally:
        decider.close()
    out.print_json(data=decision.to_json())
    verdict = "[green]allow[/green]" if decision.allow else "[red]deny[/red]"
    out.print(f"{verdict} {action}", highlight=False)
    for reason in decision.reasons:
        out.print(f"  - {reason}", highlight=False)
    if not decision.allow:
        raise typer.Exit(2)


@app.command()
def diff(
    candidate: Annotated[
        Path, typer.Option(exists=True, file_okay=False, help="Candidate policy directory.")
    ],
    events: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Audit events as JSON Lines."),
    ] = None,
    last: Annotated[int, typer.Option(min=1, help="Replay only the last N.")] = 1000,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Read decisions from this registry's audit log."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Replay the last N recorded decisions against CANDIDATE and report what would change.

    Decisions come from the registry's own audit log (``--data`` or
    ``ARBITER_DATA``), or from ``--events FILE`` (an audit export or event dump).
    """
    try:
        if events is not None:
            records = read_recorded(events, last)
        else:
            from registry.cli.audit import recorded_decisions

            records = recorded_decisions(data, last)
    except PolicyError as error:
        raise fail(error.diagnostics()) from error
    engine = _engine("embedded", candidate, None)
    try:
        report = diff_decisions(records, engine)
    finally:
        engine.close()
    if as_json:
        out.print_json(data=report.to_json())
    else:
        _print_report(report)


@app.command()
def reload(
    url: Annotated[str, typer.Option(envvar="ARBITER_URL", help="Registry URL.")] = DEFAULT_URL,
    token: Annotated[
        str | None, typer.Option(envvar="ARBITER_TOKEN", help="Bearer token of an admin.")
    ] = None,
) -> None:
    """Ask the running registry to reload its policy directory."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.post(url.rstrip("/") + RELOAD_PATH, headers=headers, timeout=60.0)
    except httpx.HTTPError as error:
        raise fail(f"cannot reach {url}: {error}", "is the registry running?") from error
    body = _json(response)
    if response.is_error:
        detail = body.get("detail", body) if isinstance(body, dict) else response.text
        raise fail(f"reload refused ({response.status_code}): {_text(detail)}")
    out.print_json(data=body)


def _engine(kind: str, directory: Path, opa_url: str | None) -> Any:
    try:
        return load_engine(kind, directory, opa_url)
    except PolicyLoadError as error:
        raise fail(error.diagnostics(), "fix the file and line named above") from error
    except PolicyError as error:
        raise fail(error.diagnostics()) from error


def _print_report(report: ImpactReport) -> None:
    out.print(
        f"candidate {report.candidate_revision}: {len(report.changes)} of "
        f"{report.replayed} recorded decisions would change",
        highlight=False,
    )
    table = Table("action", "replayed", "newly denied", "newly allowed", "reasons changed")
    for action, impact in sorted(report.by_action.items()):
        table.add_row(
            action,
            str(impact.replayed),
            str(impact.newly_denied),
            str(impact.newly_allowed),
            str(impact.reasons_changed),
        )
    out.print(table)
    for title, reasons in (("added", report.reasons_added), ("gone", report.reasons_removed)):
        for reason, count in reasons.items():
            out.print(f"  reason {title} x{count}: {reason}", highlight=False)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def _text(detail: Any) -> str:
    return detail if isinstance(detail, str) else json.dumps(detail)
