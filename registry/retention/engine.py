"""Which versions a rule set selects: a pure function of versions, rules and the time.

Nothing here touches the database or the policy, so a plan can be computed,
tested and previewed on its own; :mod:`registry.retention.runner` carries it
out (each deletion still decided by the policy). The semantics are in
:mod:`registry.retention.rules`.

Quota accounting is by blob: a repository holds the sum of the sizes of the
distinct blobs its live versions reference, so deleting a version frees only
what no other version of the repository still references.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from registry.retention.ordering import orders_by_version, version_key
from registry.retention.rules import Rule, RuleSet

DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One live version, as the engine needs it."""

    id: int
    repository: str
    format: str
    package: str
    version: str
    created_at: datetime
    last_pulled_at: datetime | None
    tags: tuple[str, ...] = ()
    blobs: tuple[tuple[str, int], ...] = ()  # (digest, size) of its files

    @property
    def size(self) -> int:
        return sum(size for _digest, size in self.blobs)

    @property
    def ref(self) -> str:
        return f"{self.repository}/{self.package}/{self.version}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why a version is deleted or kept: the rule and a sentence."""

    version: VersionInfo
    rule_id: str
    rule_name: str
    reason: str


@dataclass
class Plan:
    """What a rule set would do now: deletions (oldest first), and what rules kept."""

    deletions: list[Verdict] = field(default_factory=list)
    kept: list[Verdict] = field(default_factory=list)
    versions: int = 0
    live_by_repository: Counter[str] = field(default_factory=Counter)
    deleted_by_repository: Counter[str] = field(default_factory=Counter)

    @property
    def bytes_reclaimed(self) -> int:
        return sum(verdict.version.size for verdict in self.deletions)

    def deletes_everything(self) -> list[str]:
        """Repositories the plan would leave empty: a run needs ``confirm`` for them."""
        return sorted(
            repository
            for repository, deleted in self.deleted_by_repository.items()
            if deleted and deleted >= self.live_by_repository[repository]
        )


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def in_scope(rule: Rule, version: VersionInfo) -> bool:
    """The rule's repository, package, version and tag filters all admit ``version``."""
    if not any(fnmatch.fnmatchcase(version.repository, p) for p in rule.repositories):
        return False
    if not any(fnmatch.fnmatchcase(version.package, p) for p in rule.packages):
        return False
    if rule.include is not None and not _regex(rule.include).search(version.version):
        return False
    if rule.exclude is not None and _regex(rule.exclude).search(version.version):
        return False
    if rule.tags_include is not None and not any(
        _regex(rule.tags_include).search(tag) for tag in version.tags
    ):
        return False
    return not (
        rule.tags_exclude is not None
        and any(_regex(rule.tags_exclude).search(tag) for tag in version.tags)
    )


def newest_first(rule: Rule, versions: Sequence[VersionInfo]) -> list[VersionInfo]:
    """Versions of one package, most recent first, by the rule's order."""
    if rule.order == "version" and versions and orders_by_version(versions[0].format):
        key = version_key(versions[0].format)
        return sorted(versions, key=lambda v: (key(v.version), v.created_at, v.id), reverse=True)
    return sorted(versions, key=lambda v: (v.created_at, v.id), reverse=True)


def _protects(rule: Rule, version: VersionInfo, now: datetime) -> str | None:
    """Why ``rule`` protects ``version`` (already in scope, past keep_last), or None."""
    reasons = []
    if rule.pushed_within_days is not None:
        if version.created_at < now - rule.pushed_within_days * DAY:
            return None
        reasons.append(f"pushed within {rule.pushed_within_days} days")
    if rule.pulled_within_days is not None:
        pulled = version.last_pulled_at
        if pulled is None or pulled < now - rule.pulled_within_days * DAY:
            return None
        reasons.append(f"pulled within {rule.pulled_within_days} days")
    return ", ".join(reasons) or "retained always"


def _selects(rule: Rule, version: VersionInfo, now: datetime) -> str | None:
    """Why cleanup ``rule`` selects ``version`` (in scope, past keep_last), or None."""
    reasons = []
    if rule.older_than_days is not None:
        if version.created_at > now - rule.older_than_days * DAY:
            return None
        reasons.append(f"pushed over {rule.older_than_days} days ago")
    if rule.not_pulled_days is not None:
        pulled = version.last_pulled_at
        if pulled is not None and pulled > now - rule.not_pulled_days * DAY:
            return None
        reasons.append(
            "never pulled" if pulled is None else f"not pulled for {rule.not_pulled_days} days"
        )
    if rule.never_pulled:
        if version.last_pulled_at is not None:
            return None
        reasons.append("never pulled")
    if rule.untagged:
        if version.tags:
            return None
        reasons.append("untagged")
    if rule.keep_last is not None:
        reasons.append(f"not among the {rule.keep_last} most recent")
    return ", ".join(dict.fromkeys(reasons)) or "selected by the rule"


class _Packages:
    """Versions grouped by repository and package, in scope of each rule once."""

    def __init__(self, versions: Iterable[VersionInfo]) -> None:
        self.by_repository: dict[str, dict[str, list[VersionInfo]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for version in versions:
            self.by_repository[version.repository][version.package].append(version)

    def scoped(self, rule: Rule) -> Iterable[tuple[str, list[VersionInfo]]]:
        """(repository, in-scope versions of one package) for every package the rule reaches."""
        for repository, packages in self.by_repository.items():
            if not any(fnmatch.fnmatchcase(repository, p) for p in rule.repositories):
                continue
            for versions in packages.values():
                chosen = [v for v in versions if in_scope(rule, v)]
                if chosen:
                    yield repository, chosen


def plan(versions: Sequence[VersionInfo], rule_set: RuleSet, now: datetime) -> Plan:
    """Apply ``rule_set`` at ``now``: protection first, then cleanup, then quotas."""
    packages = _Packages(versions)
    result = Plan(versions=len(versions))
    result.live_by_repository.update(v.repository for v in versions)
    kept: dict[int, Verdict] = {}

    def keep(version: VersionInfo, rule: Rule, reason: str) -> None:
        kept.setdefault(version.id, Verdict(version, rule.id, rule.name, reason))

    for rule in rule_set.protections():
        for _repository, scoped in packages.scoped(rule):
            ordered = newest_first(rule, scoped)
            if rule.keep_last is not None:
                ordered = ordered[: rule.keep_last]
            for version in ordered:
                reason = _protects(rule, version, now)
                if reason is not None:
                    if rule.keep_last is not None:
                        reason = f"among the {rule.keep_last} most recent, {reason}"
                    keep(version, rule, f"protected: {reason}")

    selected: dict[int, Verdict] = {}
    quota_candidates: dict[tuple[str, str], list[Verdict]] = defaultdict(list)
    for rule in rule_set.cleanups():
        for repository, scoped in packages.scoped(rule):
            ordered = newest_first(rule, scoped)
            if rule.keep_last is not None:
                for version in ordered[: rule.keep_last]:
                    keep(version, rule, f"among the {rule.keep_last} most recent")
                ordered = ordered[rule.keep_last :]
            for version in ordered:
                reason = _selects(rule, version, now)
                if reason is None:
                    continue
                verdict = Verdict(version, rule.id, rule.name, reason)
                if rule.max_bytes is not None:
                    quota_candidates[(repository, rule.id)].append(verdict)
                else:
                    selected.setdefault(version.id, verdict)

    deletions = {vid: verdict for vid, verdict in selected.items() if vid not in kept}
    _apply_quotas(rule_set, packages, quota_candidates, kept, deletions)
    result.deletions = sorted(
        deletions.values(), key=lambda d: (d.version.created_at, d.version.id)
    )
    result.kept = sorted(kept.values(), key=lambda k: (k.version.created_at, k.version.id))
    result.deleted_by_repository.update(d.version.repository for d in result.deletions)
    return result


def _apply_quotas(
    rule_set: RuleSet,
    packages: _Packages,
    candidates: dict[tuple[str, str], list[Verdict]],
    kept: dict[int, Verdict],
    deletions: dict[int, Verdict],
) -> None:
    """Delete quota candidates oldest first while their repository is over the quota."""
    rules = {rule.id: rule for rule in rule_set.cleanups()}
    for (repository, rule_id), verdicts in sorted(candidates.items()):
        quota = rules[rule_id].max_bytes
        assert quota is not None
        usage = RepositoryUsage(
            v
            for versions in packages.by_repository[repository].values()
            for v in versions
            if v.id not in deletions
        )
        for verdict in sorted(verdicts, key=lambda d: (d.version.created_at, d.version.id)):
            if usage.bytes <= quota:
                break
            version = verdict.version
            if version.id in kept or version.id in deletions:
                continue
            usage.remove(version)
            reason = f"{verdict.reason}, repository over its quota of {quota} bytes"
            deletions[version.id] = Verdict(version, verdict.rule_id, verdict.rule_name, reason)


class RepositoryUsage:
    """Bytes of the distinct blobs a set of versions references, kept up to date on removal."""

    def __init__(self, versions: Iterable[VersionInfo]) -> None:
        self.references: Counter[str] = Counter()
        self.bytes = 0
        for version in versions:
            self.add(version)

    def add(self, version: VersionInfo) -> None:
        for digest, size in set(version.blobs):
            if self.references[digest] == 0:
                self.bytes += size
            self.references[digest] += 1

    def remove(self, version: VersionInfo) -> None:
        for digest, size in set(version.blobs):
            self.references[digest] -= 1
            if self.references[digest] <= 0:
                del self.references[digest]
                self.bytes -= size
