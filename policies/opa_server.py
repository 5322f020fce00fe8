"""The OPA-server engine: a real ``opa run --server`` through opa-python-client.

Publishing uses the policy API: modules of other revisions are deleted, then
every module goes to ``PUT /v1/policies/arbiter/<path>`` (concurrently, through
the async client) and the data document to ``PUT /v1/data``.
A generated module, ``package arbiter_engine``, is published first with a
pending revision and last with the real one; each decision queries
``data.arbiter_engine``, which answers the decision *and* the revision it was
made under, so a decision is only accepted from the revision this engine
expects. While a publication is under way (or after OPA restarted and lost
its policies) the revision does not match and decisions fail closed.

Decisions are made from worker threads, each over its own keep-alive
connection (``policies._opa_http``: opa-python-client's synchronous client
goes through ``requests``, whose overhead alone exceeds a decision's budget).
Like the embedded engine, it sends only the part of the input the modules read
(``policies._projection``): an SBOM's purls cost OPA more to parse than the
policies cost to evaluate. The input digest still covers the whole document.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from opa_client import AsyncOpaClient, OpaClient
from opa_client.errors import RegoParseError

from policies import _outcome
from policies._opa_http import DecisionChannel
from policies._projection import input_paths, project, projection
from policies.bundle import PolicyBundle
from policies.decision import Decision
from policies.errors import PolicyConfigError, PolicyLoadError, Problem

DEFAULT_TIMEOUT_MS = 250
PUBLISH_TIMEOUT_S = 30.0
POLICY_PREFIX = "arbiter/"
WRAPPER_ID = "arbiter-engine"
WRAPPER_PACKAGE = "arbiter_engine"


def wrapper_module(revision: str) -> str:
    """The module that answers a decision together with the revision it was made under."""
    return (
        f"package {WRAPPER_PACKAGE}\n\n"
        f'revision := "{revision}"\n\n'
        "decision := data.registry.decision\n"
    )


class OpaServerEngine:
    """Decides through an OPA server this engine has published its bundle to."""

    name = "opa"

    def __init__(
        self,
        bundle: PolicyBundle,
        url: str,
        *,
        timeout_ms: float = DEFAULT_TIMEOUT_MS,
        publish: bool = True,
        project_input: bool = True,
    ) -> None:
        self._bundle = bundle
        self._projection = (
            projection(input_paths(bundle.modules.values())) if project_input else None
        )
        self._url = url
        self._address = _address(url)
        self._client = OpaClient(**self._address, timeout=timeout_ms / 1000, retries=0)
        self._decisions = DecisionChannel(
            **self._address, path=f"/v1/data/{WRAPPER_PACKAGE}", timeout_s=timeout_ms / 1000
        )
        if publish:
            self.publish()

    @property
    def revision(self) -> str:
        return self._bundle.revision

    @property
    def url(self) -> str:
        return self._url

    def publish(self) -> None:
        """Push the bundle to OPA and check it serves our revision; :class:`PolicyLoadError`."""
        try:
            _run(self._publish)
        except PolicyLoadError:
            raise
        except Exception as error:
            raise PolicyLoadError(
                f"cannot publish policies to OPA at {self._url}: {error}"
            ) from error
        served = self.served_revision()
        if served != self.revision:
            raise PolicyLoadError(f"OPA at {self._url} serves {served!r}, expected {self.revision}")

    def served_revision(self) -> str | None:
        """The revision the OPA server holds now, or ``None`` if it holds none of ours."""
        try:
            body = self._client.get_data(f"{WRAPPER_PACKAGE}/revision")
        except Exception:
            return None
        result = body.get("result")
        return result if isinstance(result, str) else None

    def decide_many(self, input_docs: Sequence[Mapping[str, Any]]) -> list[Decision]:
        """:meth:`decide` for each document (one keep-alive connection serves them all)."""
        return [self.decide(input_doc) for input_doc in input_docs]

    def decide(self, input_doc: Mapping[str, Any]) -> Decision:
        """Decide; unreachable, slow or foreign OPA is a deny, never an exception."""
        stamp = _outcome.stamp_for(self.name, self.revision, input_doc)
        if isinstance(stamp, Decision):
            return stamp
        try:
            payload = project(dict(input_doc), self._projection)
            body = self._decisions.post({"input": payload})
        except Exception as error:  # connection refused, timeout, HTTP 500 ...
            return _outcome.unavailable(
                stamp, f"OPA at {self._url}: {type(error).__name__}: {error}"
            )
        return self._decision(stamp, body)

    def close(self) -> None:
        """Close the keep-alive connections; the policies stay on the server."""
        self._decisions.close()
        self._client.close_connection()

    def _decision(self, stamp: _outcome.Stamp, body: Any) -> Decision:
        result = body.get("result") if isinstance(body, dict) else None
        if not isinstance(result, dict) or result.get("revision") != self.revision:
            served = result.get("revision") if isinstance(result, dict) else None
            return _outcome.unavailable(
                stamp, f"OPA at {self._url} serves revision {served!r}, expected {self.revision}"
            )
        if "decision" not in result:
            return _outcome.from_result(stamp, None, defined=False)
        return _outcome.from_result(stamp, result["decision"])

    async def _publish(self) -> None:
        bundle = self._bundle
        async with AsyncOpaClient(**self._address, timeout=PUBLISH_TIMEOUT_S, retries=1) as client:
            # Decisions fail closed from here until the last step: the revision
            # they read back is "pending:...", not the one any engine expects.
            await _put_policy(client, WRAPPER_ID, wrapper_module("pending:" + bundle.revision))
            await _delete_stale(client, (POLICY_PREFIX + path for path in bundle.modules))
            await client.update_or_create_data(_plain(bundle.data), "")
            await _put_modules(client, bundle.modules)
            await _put_policy(client, WRAPPER_ID, wrapper_module(bundle.revision))


def _run(publish: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run the async publication to completion, also when called from an event loop
    (a registry endpoint calling ``reload()`` directly): then on a helper thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(publish())
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="arbiter-opa-publish") as helper:
        helper.submit(asyncio.run, publish()).result()


def _address(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PolicyConfigError(f"OPA URL {url!r} must look like http://127.0.0.1:8181")
    default_port = 443 if parts.scheme == "https" else 8181
    return {
        "host": parts.hostname,
        "port": parts.port or default_port,
        "ssl": parts.scheme == "https",
    }


def _plain(value: Any) -> Any:
    """Mappings (the bundle's read-only views) as plain dicts for the JSON encoder."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


async def _put_policy(client: AsyncOpaClient, policy_id: str, source: str) -> None:
    await client.update_policy_from_string(source, policy_id, rego_compat=False)


async def _put_modules(client: AsyncOpaClient, modules: Mapping[str, str]) -> None:
    """PUT every module, in rounds: OPA compiles each PUT against the modules it has,
    so a module calling a function from one not yet uploaded fails until that one
    arrives. A round in which nothing succeeds means the bundle itself is broken.
    """
    pending = dict(modules)
    while pending:
        paths = sorted(pending)
        outcomes = await asyncio.gather(
            *(_put_policy(client, POLICY_PREFIX + path, pending[path]) for path in paths),
            return_exceptions=True,
        )
        failed = {path: error for path, error in zip(paths, outcomes, strict=True) if error}
        if len(failed) == len(pending):
            raise PolicyLoadError("OPA refused the policy bundle", _problems(failed.values()))
        pending = {path: pending[path] for path in failed}


async def _delete_stale(client: AsyncOpaClient, keep: Iterable[str]) -> None:
    wanted = set(keep)
    for policy_id in await client.get_policies_list():
        if policy_id.startswith(POLICY_PREFIX) and policy_id not in wanted:
            await client.delete_policy(policy_id)


def _problems(errors: Iterable[BaseException]) -> tuple[Problem, ...]:
    problems: list[Problem] = []
    for error in errors:
        details = getattr(error, "errors", None) if isinstance(error, RegoParseError) else None
        if not details:
            problems.append(Problem("opa", 0, str(error)))
            continue
        for detail in details:
            location = detail.get("location") or {}
            file = str(location.get("file", "")).removeprefix(POLICY_PREFIX)
            problems.append(
                Problem(
                    file or "opa",
                    int(location.get("row", 0)),
                    str(detail.get("message", "")),
                    int(location.get("col", 0)),
                )
            )
    return tuple(problems)
