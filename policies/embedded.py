"""The embedded engine: regopy in-process, the default.

The bundle is compiled once per revision (``Interpreter.build``) and every
decision queries that compiled form. A regopy interpreter holds its input as
state, so sharing one between threads mixes up decisions (measured: about 5 %
wrong answers with 8 threads); each worker thread therefore owns one
interpreter over the shared compiled bundle, which measured faster than one
interpreter behind a lock.

Evaluations run on a small pool of worker threads so that the caller can stop
waiting after the timeout: regopy's C call cannot be interrupted, but the
caller gets its fail-closed deny on time and the stuck worker finishes later.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import regopy

from policies import _compile, _outcome
from policies.bundle import PolicyBundle
from policies.decision import Decision
from policies.validation import validate_bundle

DEFAULT_TIMEOUT_MS = 250


def default_workers() -> int:
    """Enough threads to keep every core busy while a few evaluations are stuck."""
    return max(4, 2 * (os.cpu_count() or 1))


@dataclass(frozen=True)
class _Evaluated:
    """One evaluation of a batch: when it started and ended, and what it gave."""

    stamp: _outcome.Stamp
    value: Any
    error: BaseException | None
    ended_ns: int


class EmbeddedEngine:
    """Evaluates ``data.registry.decision`` with regopy; thread-safe, fails closed."""

    name = "embedded"

    def __init__(
        self,
        policy: _compile.CompiledPolicy,
        *,
        timeout_ms: float = DEFAULT_TIMEOUT_MS,
        workers: int | None = None,
    ) -> None:
        self._policy = policy
        self._timeout_s = timeout_ms / 1000
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(
            max_workers=workers or default_workers(), thread_name_prefix="arbiter-rego"
        )

    @classmethod
    def from_bundle(
        cls,
        bundle: PolicyBundle,
        *,
        timeout_ms: float = DEFAULT_TIMEOUT_MS,
        use_opa: bool | None = None,
    ) -> EmbeddedEngine:
        """Validate and compile ``bundle``; raises :class:`PolicyLoadError` if refused."""
        return cls(validate_bundle(bundle, use_opa=use_opa), timeout_ms=timeout_ms)

    @property
    def revision(self) -> str:
        return self._policy.revision

    def decide(self, input_doc: Mapping[str, Any]) -> Decision:
        """Decide; a timeout, error or bad input is a deny, never an exception."""
        # (Hashing while regopy runs measured no faster: both need the GIL.)
        stamp = _outcome.stamp_for(self.name, self.revision, input_doc)
        if isinstance(stamp, Decision):
            return stamp
        try:
            future = self._pool.submit(self._evaluate, input_doc)
        except RuntimeError:
            return _outcome.unavailable(stamp, "the embedded engine is closed")
        try:
            value = future.result(timeout=self._timeout_s)
        except FutureTimeout:
            future.cancel()
            return _outcome.unavailable(
                stamp, f"evaluation took over {self._timeout_s * 1000:g} ms"
            )
        except Exception as error:  # fail closed on anything the engine raises
            return _outcome.unavailable(stamp, f"{type(error).__name__}: {error}")
        return _outcome.from_result(stamp, value, defined=value is not _compile.UNDEFINED)

    def decide_many(self, input_docs: Sequence[Mapping[str, Any]]) -> list[Decision]:
        """Decide each document, evaluating them one after another on one pool thread.

        Bulk work (a retention pass decides tens of thousands of actions) would
        otherwise pay a thread hop per decision, about a tenth of its cost.
        Each evaluation is still held to the timeout: one that took longer is a
        deny, and the caller stops waiting once the batch has had the timeout
        once per document; whatever was not decided by then is denied as
        unavailable, so a stuck evaluation costs its batch, never an allow.
        """
        decisions: dict[int, Decision] = {}
        stamps: dict[int, _outcome.Stamp] = {}
        for index, input_doc in enumerate(input_docs):
            stamp = _outcome.stamp_for(self.name, self.revision, input_doc)
            if isinstance(stamp, Decision):
                decisions[index] = stamp
            else:
                stamps[index] = stamp
        finished: dict[int, _Evaluated] = {}

        def evaluate_all() -> None:
            for index, stamp in stamps.items():
                started = dataclasses.replace(stamp, started_ns=time.perf_counter_ns())
                try:
                    value, error = self._evaluate(input_docs[index]), None
                except Exception as raised:  # fail closed on anything the engine raises
                    value, error = None, raised
                finished[index] = _Evaluated(started, value, error, time.perf_counter_ns())

        if stamps:
            # Closed, timed out or failed: whatever is undecided is denied below.
            with contextlib.suppress(Exception):
                self._pool.submit(evaluate_all).result(timeout=self._timeout_s * len(stamps))
        for index, stamp in stamps.items():
            decisions[index] = self._batch_outcome(stamp, finished.get(index))
        return [decisions[index] for index in range(len(input_docs))]

    def _batch_outcome(self, stamp: _outcome.Stamp, evaluated: _Evaluated | None) -> Decision:
        if evaluated is None:
            return _outcome.unavailable(stamp, "the batch was not decided in time")
        started = evaluated.stamp
        if evaluated.error is not None:
            error = evaluated.error
            return _outcome.unavailable(started, f"{type(error).__name__}: {error}")
        if (evaluated.ended_ns - started.started_ns) / 1e9 > self._timeout_s:
            return _outcome.unavailable(
                started, f"evaluation took over {self._timeout_s * 1000:g} ms"
            )
        value = evaluated.value
        return _outcome.from_result(started, value, defined=value is not _compile.UNDEFINED)

    def close(self) -> None:
        """Stop taking work; evaluations already running finish on their own."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _evaluate(self, input_doc: Mapping[str, Any]) -> Any:
        return _compile.evaluate(self._interpreter(), self._policy, input_doc)

    def _interpreter(self) -> regopy.Interpreter:
        interpreter: regopy.Interpreter | None = getattr(self._local, "interpreter", None)
        if interpreter is None:
            interpreter = self._local.interpreter = _compile.new_interpreter()
        return interpreter
