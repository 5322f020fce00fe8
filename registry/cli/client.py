"""HTTP client helpers for the CLI: configuration, requests and friendly errors.

Expected failures (a server that is down, a wrong token, a policy deny) become
one line saying what went wrong and one saying what to do next, never a
traceback: :func:`friendly` turns :class:`CliError` into that and an exit code.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.markup import escape

DEFAULT_URL = "http://127.0.0.1:8080"
API = "/api/v1"
USER_AGENT = "arbiter-cli/0.1.0"
# Management calls are small; transfers may wait minutes for a large fsync.
API_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
TRANSFER_TIMEOUT = httpx.Timeout(600.0, connect=5.0)

START_SERVER = "is the server running? start it with 'make run' or 'arbiter serve'"
HINTS: Mapping[int, str] = {
    400: "check the arguments; the message above says which one is wrong",
    401: "check ARBITER_TOKEN; an administrator can create one with "
    "'arbiter admin token create USER'",
    403: "ask an administrator for a role: 'arbiter admin grant ROLE --user USER --repo REPO'",
    404: "check the name; 'arbiter repo list' shows the repositories",
    409: "it already exists or is still in use",
    413: "the file is larger than the server's maximum upload size (ARBITER_MAX_UPLOAD_SIZE)",
    422: "check the arguments; the message above names the field",
}
SERVER_FAULT = "the server failed; its log says why"

out = Console()
err = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


class CliError(Exception):
    """An expected failure: shown as one line plus a hint, then exit ``exit_code``."""

    def __init__(self, message: str, hint: str | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code


def report(error: CliError) -> None:
    err.print(f"[bold red]error:[/] {escape(error.message)}", soft_wrap=True)
    if error.hint:
        err.print(f"[yellow]hint:[/] {escape(error.hint)}", soft_wrap=True)


def friendly(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so a :class:`CliError` prints cleanly and exits non-zero."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except CliError as error:
            report(error)
            raise typer.Exit(error.exit_code) from None

    return wrapper


@dataclass(frozen=True)
class ClientConfig:
    """Where the server is and who we are, from ``ARBITER_URL`` and ``ARBITER_TOKEN``."""

    url: str
    token: str | None

    @classmethod
    def from_env(cls) -> ClientConfig:
        url = os.environ.get("ARBITER_URL", "").strip() or DEFAULT_URL
        if not url.startswith(("http://", "https://")):
            raise CliError(
                f"ARBITER_URL {url!r} is not an http(s) URL",
                hint=f"set it like ARBITER_URL={DEFAULT_URL}",
                exit_code=2,
            )
        token = os.environ.get("ARBITER_TOKEN", "").strip() or None
        return cls(url=url.rstrip("/"), token=token)

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


@contextmanager
def connect(timeout: httpx.Timeout = API_TIMEOUT) -> Iterator[httpx.Client]:
    """An HTTP client for the configured server; transport failures become CliErrors."""
    config = ClientConfig.from_env()
    with httpx.Client(base_url=config.url, headers=config.headers(), timeout=timeout) as client:
        try:
            yield client
        except httpx.ConnectError as error:
            raise CliError(
                f"cannot connect to {config.url}: {_reason(error)}", START_SERVER
            ) from None
        except httpx.TimeoutException:
            raise CliError(
                f"{config.url} did not answer in time", "the server may be overloaded; retry"
            ) from None
        except httpx.HTTPError as error:
            raise CliError(
                f"the connection to {config.url} failed: {_reason(error)}", SERVER_FAULT
            ) from None


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0]


def error_message(response: httpx.Response) -> str:
    """The server's ``{"error": {"message"}}``, or the best one line we can find."""
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()
        message = text.splitlines()[0] if text else response.reason_phrase
    return f"{message} (HTTP {response.status_code})"


def server_error(response: httpx.Response, hints: Mapping[int, str] | None = None) -> CliError:
    status = response.status_code
    hint = (hints or {}).get(status) or HINTS.get(status)
    if hint is None and status >= 500:
        hint = SERVER_FAULT
    return CliError(error_message(response), hint)


def call(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    json: Any = None,
    params: Mapping[str, str] | None = None,
    hints: Mapping[int, str] | None = None,
) -> Any:
    """One API request; the decoded JSON body, or None for an empty one."""
    response = client.request(method, API + path, json=json, params=params)
    if response.is_error:
        raise server_error(response, hints)
    return response.json() if response.content else None


def api(method: str, path: str, **kwargs: Any) -> Any:
    """:func:`call` over a fresh connection, for commands that make one request."""
    with connect() as client:
        return call(client, method, path, **kwargs)


def segment(value: str) -> str:
    """Quote one path segment so names with '/' or '%' cannot change the route."""
    return quote(value, safe="")
