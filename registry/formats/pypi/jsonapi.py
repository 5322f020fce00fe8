"""The JSON project API (``/pypi/{name}/json`` and ``/pypi/{name}/{version}/json``).

The shape is PyPI's, which tools (poetry, pip-audit, renovate, ...) read:
``info`` (the release's core metadata), ``urls`` (its files), ``releases``
(every version's files; project endpoint only), ``last_serial`` and
``vulnerabilities`` (always empty: findings live in the policy input).
"""

from __future__ import annotations

from typing import Any

from packaging.version import InvalidVersion, Version

from registry.formats.pypi.lookups import FileRow, Release
from registry.formats.pypi.names import SDIST, WHEEL
from registry.formats.pypi.simple import distributions, file_url, sorted_versions

_INFO_KEYS = (
    "summary",
    "description",
    "description_content_type",
    "license",
    "license_expression",
    "classifiers",
    "requires_dist",
    "requires_python",
    "author",
    "author_email",
    "maintainer",
    "maintainer_email",
    "home_page",
    "keywords",
    "project_urls",
    "provides_extra",
)


def _file(prefix: str, name: str, row: FileRow) -> dict[str, Any]:
    meta = row.meta
    moment = row.created_at
    return {
        "filename": row.filename,
        "url": file_url(prefix, name, row),
        "digests": {
            "sha256": row.sha256,
            "md5": meta.get("md5", ""),
            "blake2b_256": meta.get("blake2b_256", ""),
        },
        "md5_digest": meta.get("md5", ""),
        "size": row.size,
        "packagetype": meta.get("packagetype", WHEEL if row.filename.endswith(".whl") else SDIST),
        "python_version": meta.get("python_version", ""),
        "requires_python": meta.get("requires_python"),
        "upload_time": moment.strftime("%Y-%m-%dT%H:%M:%S"),
        "upload_time_iso_8601": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "yanked": bool(meta.get("yanked")),
        "yanked_reason": meta.get("yanked_reason"),
        "has_sig": False,
        "comment_text": meta.get("comment", ""),
    }


def _is_yanked(release: Release) -> bool:
    dists, _ = distributions(release.files)
    return bool(dists) and all(f.meta.get("yanked") for f in dists)


def _is_prerelease(version: str) -> bool:
    try:
        return Version(version).is_prerelease
    except InvalidVersion:
        return True


def latest(releases: list[Release]) -> Release:
    """The version PyPI shows: the highest final release not yanked, else the highest."""
    by_version = {r.version: r for r in releases}
    ordered = [by_version[v] for v in sorted_versions(by_version)]
    candidates = [r for r in ordered if not _is_yanked(r) and not _is_prerelease(r.version)]
    return (candidates or [r for r in ordered if not _is_yanked(r)] or ordered)[-1]


def _info(prefix: str, name: str, release: Release) -> dict[str, Any]:
    meta = release.meta
    info: dict[str, Any] = {key: meta.get(key) for key in _INFO_KEYS}
    yanked = _is_yanked(release)
    reasons = [f.meta.get("yanked_reason") for f in release.files if f.meta.get("yanked")]
    info.update(
        name=meta.get("name", name),
        version=release.version,
        yanked=yanked,
        yanked_reason=(reasons[0] or None) if yanked and reasons else None,
        package_url=f"{prefix}/project/{name}/",
        project_url=f"{prefix}/project/{name}/",
        release_url=f"{prefix}/project/{name}/{release.version}/",
    )
    return info


def project(prefix: str, name: str, releases: list[Release]) -> dict[str, Any]:
    """``/pypi/{name}/json``."""
    current = latest(releases)
    by_version = {}
    for release in releases:
        dists, _ = distributions(release.files)
        by_version[release.version] = [_file(prefix, name, f) for f in dists]
    ordered = {version: by_version[version] for version in sorted_versions(by_version)}
    return {
        "info": _info(prefix, name, current),
        "last_serial": _serial(releases),
        "releases": ordered,
        "urls": ordered.get(current.version, []),
        "vulnerabilities": [],
    }


def release(prefix: str, name: str, releases: list[Release], version: str) -> dict[str, Any]:
    """``/pypi/{name}/{version}/json``."""
    found = next(r for r in releases if r.version == version)
    dists, _ = distributions(found.files)
    return {
        "info": _info(prefix, name, found),
        "last_serial": _serial(releases),
        "urls": [_file(prefix, name, f) for f in dists],
        "vulnerabilities": [],
    }


def _serial(releases: list[Release]) -> int:
    """A number that grows with every upload (the newest file's upload time, in ms)."""
    times = [f.created_at.timestamp() for r in releases for f in r.files]
    return int(max(times, default=0) * 1000)
