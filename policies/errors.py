"""The errors of the decision point, with one root type.

Engines never raise these from ``decide`` (they fail closed instead); they are
raised by the functions that build inputs and load policies, so that a caller
handing over bad facts or a broken policy directory learns exactly why.
"""

from __future__ import annotations

from dataclasses import dataclass


class PolicyError(Exception):
    """Root of every error the ``policies`` package raises."""

    def diagnostics(self) -> str:
        """A text for people: what went wrong and how to fix it."""
        return str(self)


class PolicyInputError(PolicyError):
    """The input document cannot be given to a policy (not JSON, wrong shape)."""


class PolicyConfigError(PolicyError):
    """The engine settings are unusable (unknown engine kind, missing OPA URL)."""


@dataclass(frozen=True)
class Problem:
    """One reason a policy bundle was refused, pointing at the file and line."""

    file: str
    line: int
    message: str
    column: int = 0

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.column:
            where = f"{where}:{self.column}"
        return f"{where}: {self.message}"


class PolicyLoadError(PolicyError):
    """A policy bundle was refused; the revision in force (if any) stays.

    ``problems`` names each file, line and message, as the policy author needs
    them to fix the policy.
    """

    def __init__(self, summary: str, problems: tuple[Problem, ...] = ()) -> None:
        self.summary = summary
        self.problems = problems
        super().__init__(self.diagnostics())

    def diagnostics(self) -> str:
        lines = [self.summary, *(f"  {problem}" for problem in self.problems)]
        return "\n".join(lines)
