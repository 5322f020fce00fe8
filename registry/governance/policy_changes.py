"""Policy reloads are events too: which revision replaced which, and who asked."""

from __future__ import annotations

from typing import Any

from policies import PolicyLoadError, PolicyPoint
from registry.auth.subject import SYSTEM, Subject
from registry.governance.governor import Governor


def record_reload(
    governor: Governor,
    point: PolicyPoint,
    subject: Subject,
    before: str,
    after: str,
    error: str | None = None,
) -> None:
    details: dict[str, Any] = {"previous_revision": before, "revision": after}
    if error is not None:
        details["error"] = error
    governor.record(
        subject,
        "policy.reload" if error is None else "policy.reload_refused",
        {"policy_dir": str(point.policy_dir)},
        lambda _session: None,
        details,
    )


def reload_and_record(governor: Governor, point: PolicyPoint, subject: Subject) -> str:
    """Reload; audit the outcome either way. Raises PolicyLoadError when refused."""
    before = point.revision
    try:
        after = point.reload()
    except PolicyLoadError as error:
        record_reload(governor, point, subject, before, before, error=error.diagnostics())
        raise
    if after != before:
        record_reload(governor, point, subject, before, after)
    return after


def watch_and_record(governor: Governor, point: PolicyPoint) -> None:
    """Reload on every file change, recording each new revision or refusal."""
    state = {"revision": point.revision}

    def on_reload(revision: str) -> None:
        record_reload(governor, point, SYSTEM, state["revision"], revision)
        state["revision"] = revision

    def on_error(error: PolicyLoadError) -> None:
        current = state["revision"]
        record_reload(governor, point, SYSTEM, current, current, error=error.diagnostics())

    point.start_watching(on_reload=on_reload, on_error=on_error)
