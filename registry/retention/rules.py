"""The rule set document: cleanup and protection rules, the schedule, the recovery period.

Semantics follow Harbor's tag retention and Harness cleanup policies:

* A rule applies to the versions *in its scope*: repositories matching one of
  ``repositories`` (glob, ``libs-*``), packages matching one of ``packages``
  (glob), versions matching ``include`` and not ``exclude`` (regular
  expressions, searched in the version string), and, with ``tags_include`` /
  ``tags_exclude``, versions one of whose tags matches (resp. none of whose
  tags matches).
* ``protect`` rules (retain always) are evaluated first. A version in scope is
  protected when every condition the rule sets holds: among the ``keep_last``
  most recent in its package, pushed within ``pushed_within_days``, pulled
  within ``pulled_within_days``. A protect rule without conditions protects
  its whole scope.
* ``cleanup`` rules select versions in scope for deletion when every
  condition the rule sets holds: older than ``older_than_days`` since push,
  not pulled for ``not_pulled_days`` (never pulled counts), ``never_pulled``,
  ``untagged`` (OCI manifests no tag points at). The ``keep_last`` most recent
  versions of each package in scope are *retained by the rule* and never
  selected. With ``max_bytes`` the rule is a quota: its candidates are deleted
  oldest first only while the repository holds more than ``max_bytes``.
* When rules disagree, retention wins: a version selected by one cleanup rule
  but protected, or retained by another rule's ``keep_last``, is kept (and the
  report names the rule that kept it).

OCI accessories (manifests with a ``subject``: SBOM referrers, signatures)
are not versions to these rules while their image lives; they stay with it,
and are untagged versions once it is gone.

"Most recent" is by push time, or with ``order: version`` by the format's
version order (:mod:`registry.retention.ordering`).

Every invalid value is refused with the field named: a pattern that does not
compile, a negative count, a cron expression or time zone APScheduler does not
accept, two rules with one id.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated, Any, Final, Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PROTECT: Final = "protect"
CLEANUP: Final = "cleanup"
DEFAULT_RECOVERY_DAYS = 14
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_SLUG = re.compile(r"[^a-z0-9._-]+")

Days = Annotated[int, Field(ge=0, le=36500)]
Count = Annotated[int, Field(ge=0)]

# Conditions only one kind of rule understands; the other kind refuses them.
_CLEANUP_ONLY = ("older_than_days", "not_pulled_days", "never_pulled", "untagged", "max_bytes")
_PROTECT_ONLY = ("pushed_within_days", "pulled_within_days")


def _compiles(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        re.compile(value)
    except re.error as error:
        raise ValueError(f"pattern {value!r} does not compile: {error}") from None
    return value


def slug(name: str) -> str:
    """A rule id from its name: ``Keep last 10!`` -> ``keep-last-10``."""
    text = _SLUG.sub("-", name.lower()).strip("-._")
    return text[:64] or "rule"


class Rule(BaseModel):
    """One cleanup or protection rule; see the module docstring for the semantics."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default="", description="Stable id (lower case); derived from name if empty.")
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["cleanup", "protect"] = CLEANUP
    repositories: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    packages: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    include: str | None = Field(default=None, description="Regex a version must match.")
    exclude: str | None = Field(default=None, description="Regex a version must not match.")
    tags_include: str | None = Field(default=None, description="Regex one tag must match.")
    tags_exclude: str | None = Field(default=None, description="Regex no tag may match.")
    keep_last: Count | None = None
    order: Literal["push_time", "version"] = "push_time"
    older_than_days: Days | None = None
    not_pulled_days: Days | None = None
    never_pulled: bool = False
    untagged: bool = False
    max_bytes: Count | None = None
    pushed_within_days: Days | None = None
    pulled_within_days: Days | None = None

    @field_validator("include", "exclude", "tags_include", "tags_exclude")
    @classmethod
    def _patterns_compile(cls, value: str | None) -> str | None:
        return _compiles(value)

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if value and not _ID.match(value):
            raise ValueError("use 1-64 lower case letters, digits, '.', '_' or '-'")
        return value

    @model_validator(mode="after")
    def _kind_fits(self) -> Rule:
        if not self.id:
            self.id = slug(self.name)
        foreign = _PROTECT_ONLY if self.kind == CLEANUP else _CLEANUP_ONLY
        for name in foreign:
            if getattr(self, name) not in (None, False):
                raise ValueError(
                    f"{name} applies to {PROTECT if self.kind == CLEANUP else CLEANUP} rules, "
                    f"not to a {self.kind} rule"
                )
        return self

    @property
    def label(self) -> str:
        return f"{self.id} ({self.name})" if self.name != self.id else self.id


class Schedule(BaseModel):
    """When runs start by themselves: a five-field cron expression in a time zone."""

    model_config = ConfigDict(extra="forbid")

    cron: str = Field(description="Five fields: minute hour day month day-of-week.")
    timezone: str = "UTC"
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as error:
            raise ValueError(
                f"{value!r} is not a cron expression ({error}); use five fields, "
                "e.g. '0 3 * * *' for 03:00 every day"
            ) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a time zone; use an IANA name such as 'Europe/Berlin'"
            ) from None
        return value

    def trigger(self) -> CronTrigger:
        return CronTrigger.from_crontab(self.cron, timezone=zoneinfo.ZoneInfo(self.timezone))


class RuleSet(BaseModel):
    """The whole rule set: what one version of it holds."""

    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(default_factory=list)
    schedule: Schedule | None = None
    recovery_days: Days = Field(
        default=DEFAULT_RECOVERY_DAYS,
        description="How long a deleted version can be restored before a run purges it.",
    )

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"two rules have the id {rule.id!r}; give each rule its own id")
            seen.add(rule.id)
        return rules

    def protections(self) -> list[Rule]:
        return [rule for rule in self.rules if rule.kind == PROTECT]

    def cleanups(self) -> list[Rule]:
        return [rule for rule in self.rules if rule.kind == CLEANUP]

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
