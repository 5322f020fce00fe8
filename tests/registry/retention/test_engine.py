"""Rule semantics on the pure engine: no database, no policy, months in microseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from registry.retention.engine import RepositoryUsage, VersionInfo, plan
from registry.retention.ordering import natural_key, version_key
from registry.retention.rules import RuleSet

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
_ids = iter(range(1, 10_000))


def version(
    name: str,
    *,
    age_days: float = 0,
    pulled_days_ago: float | None = None,
    package: str = "tool",
    repository: str = "files",
    fmt: str = "generic",
    tags: tuple[str, ...] = (),
    blobs: tuple[tuple[str, int], ...] | None = None,
) -> VersionInfo:
    vid = next(_ids)
    return VersionInfo(
        id=vid,
        repository=repository,
        format=fmt,
        package=package,
        version=name,
        created_at=NOW - timedelta(days=age_days),
        last_pulled_at=None if pulled_days_ago is None else NOW - timedelta(days=pulled_days_ago),
        tags=tags,
        blobs=blobs if blobs is not None else ((f"sha256:{vid:064x}", 100),),
    )


def rules(*items: dict[str, object], **extra: object) -> RuleSet:
    return RuleSet.model_validate({"rules": list(items), **extra})


def deleted(versions: list[VersionInfo], rule_set: RuleSet) -> list[str]:
    return [d.version.version for d in plan(versions, rule_set, NOW).deletions]


def test_age_since_push() -> None:
    versions = [version("1", age_days=100), version("2", age_days=10)]
    assert deleted(versions, rules({"name": "old", "older_than_days": 30})) == ["1"]


def test_days_since_last_pull_counts_never_pulled() -> None:
    versions = [
        version("never", age_days=5),
        version("stale", age_days=5, pulled_days_ago=60),
        version("fresh", age_days=5, pulled_days_ago=2),
    ]
    assert deleted(versions, rules({"name": "idle", "not_pulled_days": 30})) == ["never", "stale"]
    assert deleted(versions, rules({"name": "unused", "never_pulled": True})) == ["never"]


def test_keep_last_by_push_time() -> None:
    versions = [version(f"1.{i}", age_days=10 - i) for i in range(5)]
    result = plan(versions, rules({"name": "keep 2", "keep_last": 2}), NOW)
    assert [d.version.version for d in result.deletions] == ["1.0", "1.1", "1.2"]
    assert {k.version.version for k in result.kept} == {"1.3", "1.4"}
    assert all(k.rule_id == "keep-2" for k in result.kept)


def test_keep_last_by_version_order_ignores_push_time() -> None:
    # pushed in a shuffled order: 1.10.0 first, 1.9.0 last
    versions = [
        version("1.10.0", age_days=9),
        version("1.2.0", age_days=8),
        version("1.9.0", age_days=1),
        version("2.0.0-rc.1", age_days=5),
    ]
    keep = {"name": "keep", "keep_last": 2, "order": "version"}
    assert sorted(deleted(versions, rules(keep))) == ["1.2.0", "1.9.0"]
    by_push = deleted(versions, rules({**keep, "order": "push_time"}))
    assert sorted(by_push) == ["1.10.0", "1.2.0"]


def test_version_orders() -> None:
    pypi = version_key("pypi")
    assert sorted(["1.0", "1.0rc1", "1.0.post1", "0.9", "junk"], key=pypi) == [
        "junk",
        "0.9",
        "1.0rc1",
        "1.0",
        "1.0.post1",
    ]
    semver = version_key("npm")
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0", "v1.1"]
    assert sorted(reversed(ordered), key=semver) == ordered
    assert sorted(["build-10", "build-9", "build-100"], key=natural_key) == [
        "build-9",
        "build-10",
        "build-100",
    ]


def test_include_exclude_and_tag_patterns() -> None:
    versions = [
        version("1.0.0-SNAPSHOT", age_days=50),
        version("1.0.0", age_days=50),
        version("nightly-1", age_days=50, tags=("nightly",)),
        version("rel", age_days=50, tags=("v2.0.0", "latest")),
    ]
    snapshots = {"name": "snapshots", "include": "SNAPSHOT$", "older_than_days": 7}
    assert deleted(versions, rules(snapshots)) == ["1.0.0-SNAPSHOT"]
    not_snapshots = {"name": "rest", "exclude": "SNAPSHOT", "older_than_days": 7}
    assert deleted(versions, rules(not_snapshots)) == ["1.0.0", "nightly-1", "rel"]
    nightly = {"name": "nightly", "tags_include": "^nightly$"}
    assert deleted(versions, rules(nightly)) == ["nightly-1"]
    no_release = {"name": "no-release", "tags_exclude": r"^v\d", "older_than_days": 1}
    assert "rel" not in deleted(versions, rules(no_release))


def test_untagged_oci_manifests() -> None:
    versions = [
        version("sha256:aa", fmt="oci", tags=("latest",), age_days=3),
        version("sha256:bb", fmt="oci", age_days=3),
    ]
    assert deleted(versions, rules({"name": "untagged", "untagged": True})) == ["sha256:bb"]


def test_repository_and_package_patterns() -> None:
    versions = [
        version("1", repository="libs-dev", age_days=40),
        version("1", repository="libs-prod", age_days=40),
        version("1", repository="libs-dev", package="keep-me", age_days=40),
    ]
    rule = {
        "name": "dev",
        "repositories": ["libs-dev*"],
        "packages": ["t*"],
        "older_than_days": 30,
    }
    result = plan(versions, rules(rule), NOW)
    assert [(d.version.repository, d.version.package) for d in result.deletions] == [
        ("libs-dev", "tool")
    ]


def test_quota_deletes_oldest_eligible_first_counting_shared_blobs_once() -> None:
    shared = ("sha256:" + "e" * 64, 500)
    versions = [
        version("1", age_days=30, blobs=(shared, ("sha256:" + "1" * 64, 100))),
        version("2", age_days=20, blobs=(shared, ("sha256:" + "2" * 64, 100))),
        version("3", age_days=10, blobs=(("sha256:" + "3" * 64, 100),)),
        version("4", age_days=1, blobs=(("sha256:" + "4" * 64, 100),)),
    ]
    usage = RepositoryUsage(versions)
    assert usage.bytes == 900
    # 900 bytes against 650: deleting "1" frees only 100 (the shared blob stays), "2" frees 600
    quota = {"name": "quota", "max_bytes": 650, "keep_last": 1}
    assert deleted(versions, rules(quota)) == ["1", "2"]
    assert deleted(versions, rules({**quota, "max_bytes": 10_000})) == []


def test_protection_first_and_retention_wins() -> None:
    versions = [
        version("1.0.0", age_days=400, tags=("v1.0.0",)),
        version("1.1.0", age_days=300),
        version("1.2.0", age_days=200),
        version("1.3.0", age_days=100),
    ]
    rule_set = rules(
        {"name": "releases", "kind": "protect", "tags_include": r"^v\d"},
        {"name": "old", "older_than_days": 90},
        {"name": "recent", "keep_last": 2, "older_than_days": 10_000},
    )
    result = plan(versions, rule_set, NOW)
    assert [d.version.version for d in result.deletions] == ["1.1.0"]
    kept = {k.version.version: k.rule_id for k in result.kept}
    # protected by the protect rule; kept by the other rule's keep_last although "old" selects them
    assert kept == {"1.0.0": "releases", "1.2.0": "recent", "1.3.0": "recent"}


def test_protect_conditions() -> None:
    versions = [
        version("a", age_days=200, pulled_days_ago=3),
        version("b", age_days=200, pulled_days_ago=300),
        version("c", age_days=2),
    ]
    rule_set = rules(
        {"name": "pulled", "kind": "protect", "pulled_within_days": 7},
        {"name": "pushed", "kind": "protect", "pushed_within_days": 7},
        {"name": "all"},
    )
    assert deleted(versions, rule_set) == ["b"]


def test_a_plan_that_empties_a_repository_is_flagged() -> None:
    versions = [
        version("1", repository="a"),
        version("1", repository="b"),
        version("2", repository="b"),
    ]
    result = plan(versions, rules({"name": "all", "repositories": ["a"]}), NOW)
    assert result.deletes_everything() == ["a"]
    result = plan(versions, rules({"name": "all-but-one", "keep_last": 1}), NOW)
    assert result.deletes_everything() == []


def test_preview_reports_rule_and_bytes() -> None:
    versions = [version("1", age_days=40), version("2", age_days=40)]
    result = plan(versions, rules({"name": "old", "older_than_days": 30}), NOW)
    assert result.bytes_reclaimed == 200
    assert {d.rule_id for d in result.deletions} == {"old"}
    assert result.deletions[0].reason == "pushed over 30 days ago"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"rules": [{"name": "x", "include": "("}]}, "include"),
        ({"rules": [{"name": "x", "tags_exclude": "[a-"}]}, "tags_exclude"),
        ({"rules": [{"name": "x", "keep_last": -1}]}, "keep_last"),
        ({"rules": [{"name": "x", "older_than_days": -3}]}, "older_than_days"),
        ({"schedule": {"cron": "61 * * * *"}}, "cron"),
        ({"schedule": {"cron": "not cron"}}, "cron"),
        ({"schedule": {"cron": "0 3 * * *", "timezone": "Mars/Olympus"}}, "timezone"),
    ],
)
def test_invalid_rules_name_the_field(document: dict[str, object], field: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        RuleSet.model_validate(document)
    assert field in {str(part) for part in caught.value.errors()[0]["loc"]}
