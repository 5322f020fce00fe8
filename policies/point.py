"""The decision point the registry holds: the engine in force, reloadable.

``PolicyPoint`` is itself a :class:`~policies.decision.PolicyEngine`: it hands
each decision to the engine in force. ``reload()`` reads the policy directory
again and, if the bundle passes validation, swaps in a new engine for the new
revision; if it does not, it raises :class:`PolicyLoadError` naming file, line
and message, and the last good revision stays in force. ``start_watching()``
does the same whenever a ``.rego`` or ``data.json`` file changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import watchfiles

from policies.bundle import PolicyBundle, load_bundle
from policies.decision import Decision, PolicyEngine
from policies.embedded import DEFAULT_TIMEOUT_MS
from policies.errors import PolicyLoadError
from policies.factory import default_policy_dir, engine_for_bundle

log = logging.getLogger(__name__)

# The old engine keeps serving decisions that already hold it for this long.
RETIRE_AFTER_S = 2.0
WATCH_DEBOUNCE_MS = 300

ReloadListener = Callable[[str], None]
ErrorListener = Callable[[PolicyLoadError], None]


@dataclass(frozen=True)
class EngineSettings:
    """How to build an engine: kind, policy directory, OPA URL, timeout."""

    kind: str
    policy_dir: Path
    opa_url: str | None
    timeout_ms: float


class PolicyPoint:
    """Holds the engine in force and swaps it atomically on reload."""

    def __init__(
        self,
        kind: str = "embedded",
        policy_dir: Path | None = None,
        opa_url: str | None = None,
        timeout_ms: float = DEFAULT_TIMEOUT_MS,
    ) -> None:
        """Load the policy directory; :class:`PolicyLoadError` if it is refused."""
        self.settings = EngineSettings(
            kind, Path(policy_dir or default_policy_dir()), opa_url, timeout_ms
        )
        self.last_error: PolicyLoadError | None = None
        self._reload_lock = threading.Lock()
        self._engine = self._build()
        self._retiring: list[tuple[threading.Timer, PolicyEngine]] = []
        self._stop_watch: threading.Event | None = None
        self._watcher: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self._engine.name

    @property
    def revision(self) -> str:
        return self._engine.revision

    @property
    def policy_dir(self) -> Path:
        return self.settings.policy_dir

    def decide(self, input_doc: Mapping[str, Any]) -> Decision:
        """Decide with the engine in force (never raises; see :class:`PolicyEngine`)."""
        return self._engine.decide(input_doc)

    def decide_many(self, input_docs: Sequence[Mapping[str, Any]]) -> list[Decision]:
        """:meth:`decide` for each document, by one engine (one revision for the batch)."""
        return self._engine.decide_many(input_docs)

    def reload(self) -> str:
        """Put the directory's current bundle in force; the revision now in force.

        Raises :class:`PolicyLoadError` (file, line, message) when the bundle is
        refused; the previous revision then stays in force.
        """
        with self._reload_lock:
            try:
                return self._swap()
            except PolicyLoadError as error:
                self.last_error = error
                raise

    def start_watching(
        self, on_reload: ReloadListener | None = None, on_error: ErrorListener | None = None
    ) -> None:
        """Reload whenever a policy file changes, on a daemon thread, until :meth:`close`."""
        if self._watcher is not None:
            return
        self._stop_watch = threading.Event()
        self._watcher = threading.Thread(
            target=self._watch,
            args=(self._stop_watch, on_reload, on_error),
            name="arbiter-policy-watch",
            daemon=True,
        )
        self._watcher.start()

    def stop_watching(self) -> None:
        if self._stop_watch is not None:
            self._stop_watch.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        self._watcher = self._stop_watch = None

    def close(self) -> None:
        """Stop watching and release every engine, retiring ones included."""
        self.stop_watching()
        for timer, engine in self._retiring:
            timer.cancel()
            engine.close()
        self._retiring.clear()
        self._engine.close()

    def _build(self, bundle: PolicyBundle | None = None) -> PolicyEngine:
        settings = self.settings
        bundle = bundle or load_bundle(settings.policy_dir)
        return engine_for_bundle(bundle, settings.kind, settings.opa_url, settings.timeout_ms)

    def _swap(self) -> str:
        old = self._engine
        bundle = load_bundle(self.settings.policy_dir)
        if bundle.revision == old.revision:
            return old.revision
        try:
            new = self._build(bundle)
        except PolicyLoadError:
            _restore(old)
            raise
        self._engine = new
        self.last_error = None
        self._retire(old)
        log.info("policy revision %s in force (was %s)", new.revision, old.revision)
        return new.revision

    def _retire(self, old: PolicyEngine) -> None:
        self._retiring = [pair for pair in self._retiring if pair[0].is_alive()]
        timer = threading.Timer(RETIRE_AFTER_S, old.close)
        timer.daemon = True
        timer.start()
        self._retiring.append((timer, old))

    def _watch(
        self,
        stop: threading.Event,
        on_reload: ReloadListener | None,
        on_error: ErrorListener | None,
    ) -> None:
        for _changes in watchfiles.watch(
            self.settings.policy_dir,
            watch_filter=_policy_file,
            debounce=WATCH_DEBOUNCE_MS,
            stop_event=stop,
            raise_interrupt=False,
        ):
            self._reload_and_tell(on_reload, on_error)

    def _reload_and_tell(
        self, on_reload: ReloadListener | None, on_error: ErrorListener | None
    ) -> None:
        try:
            revision = self.reload()
        except PolicyLoadError as error:
            log.error("policy change refused; revision %s stays:\n%s", self.revision, error)
            if on_error is not None:
                on_error(error)
            return
        if on_reload is not None:
            on_reload(revision)


def _policy_file(_change: watchfiles.Change, path: str) -> bool:
    name = Path(path).name
    return name.endswith(".rego") or name == "data.json"


def _restore(old: PolicyEngine) -> None:
    """An OPA server may hold half a refused bundle: publish the old one again."""
    publish = getattr(old, "publish", None)  # only the OPA engine publishes
    if publish is not None:
        try:
            publish()
        except PolicyLoadError as error:
            log.error("could not restore revision %s on OPA: %s", old.revision, error)
