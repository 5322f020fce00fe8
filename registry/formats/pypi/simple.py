"""The simple repository API: PEP 503 HTML and PEP 691 JSON, chosen by ``Accept``.

Each file link carries what installers need to decide without downloading:
its sha256 in the URL fragment (PEP 503) or ``hashes`` (PEP 691),
``requires-python`` (PEP 503 as amended by PEP 345), the yank and its reason
(PEP 592), and for wheels the hash of the metadata file served beside it
(PEP 658, under both the PEP 714 name and the old one that older pips read).
Version 1.1 of the API (PEP 700) adds ``versions``, ``size`` and ``upload-time``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from packaging.version import InvalidVersion, Version

from registry.formats.pypi.lookups import FileRow

API_VERSION = "1.1"
JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
HTML = "text/html"
# Accept value -> the media type answered; ``latest`` is v1 today.
_OFFERS = {
    JSON_V1: JSON_V1,
    "application/vnd.pypi.simple.latest+json": JSON_V1,
    HTML_V1: HTML_V1,
    "application/vnd.pypi.simple.latest+html": HTML_V1,
    HTML: HTML,
    "text/*": HTML,
    "*/*": HTML,
}


def negotiate(accept: str | None) -> str | None:
    """The media type to answer with; None when nothing acceptable is offered (406)."""
    if not accept:
        return HTML
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(accept.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        offer = _OFFERS.get(media.lower())
        if offer is None or quality <= 0:
            continue
        rank = (quality, -position, offer)
        if best is None or rank[:2] > best[:2]:
            best = rank
    return None if best is None else best[2]


def content_type(media: str) -> str:
    return media if media != HTML else "text/html; charset=utf-8"


def _sort_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def sorted_versions(versions: Iterable[str]) -> list[str]:
    return sorted(set(versions), key=_sort_key)


def _upload_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def distributions(files: list[FileRow]) -> tuple[list[FileRow], dict[str, FileRow]]:
    """Distribution files in version order, and the metadata files by the name they describe."""
    dists = [f for f in files if not f.is_metadata_file]
    dists.sort(key=lambda f: (_sort_key(f.version), f.filename))
    metadata = {f.meta["metadata_of"]: f for f in files if f.is_metadata_file}
    return dists, metadata


def file_url(prefix: str, name: str, row: FileRow) -> str:
    return f"{prefix}/files/{name}/{row.version}/{row.filename}"


def project_json(prefix: str, name: str, files: list[FileRow]) -> bytes:
    """The PEP 691 project page."""
    dists, metadata = distributions(files)
    entries: list[dict[str, Any]] = []
    for row in dists:
        entry: dict[str, Any] = {
            "filename": row.filename,
            "url": file_url(prefix, name, row),
            "hashes": {"sha256": row.sha256},
            "size": row.size,
            "upload-time": _upload_time(row.created_at),
        }
        if row.meta.get("requires_python"):
            entry["requires-python"] = row.meta["requires_python"]
        core = metadata.get(row.filename)
        core_hashes: dict[str, str] | bool = {"sha256": core.sha256} if core else False
        entry["core-metadata"] = core_hashes
        entry["dist-info-metadata"] = core_hashes
        if row.meta.get("yanked"):
            entry["yanked"] = row.meta.get("yanked_reason") or True
        else:
            entry["yanked"] = False
        entries.append(entry)
    body = {
        "meta": {"api-version": API_VERSION},
        "name": name,
        "versions": sorted_versions(row.version for row in dists),
        "files": entries,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def project_html(prefix: str, name: str, files: list[FileRow]) -> bytes:
    """The PEP 503 project page."""
    dists, metadata = distributions(files)
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "<head>",
        f'<meta name="pypi:repository-version" content="{API_VERSION}">',
        f"<title>Links for {html.escape(name)}</title>",
        "</head>",
        "<body>",
        f"<h1>Links for {html.escape(name)}</h1>",
    ]
    for row in dists:
        url = html.escape(f"{file_url(prefix, name, row)}#sha256={row.sha256}")
        attributes = [f'href="{url}"']
        if row.meta.get("requires_python"):
            attributes.append(f'data-requires-python="{html.escape(row.meta["requires_python"])}"')
        core = metadata.get(row.filename)
        if core is not None:
            attributes.append(f'data-dist-info-metadata="sha256={core.sha256}"')
            attributes.append(f'data-core-metadata="sha256={core.sha256}"')
        if row.meta.get("yanked"):
            reason = html.escape(row.meta.get("yanked_reason") or "")
            attributes.append(f'data-yanked="{reason}"')
        lines.append(f"<a {' '.join(attributes)}>{html.escape(row.filename)}</a><br/>")
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines).encode()


def index_json(names: list[str]) -> bytes:
    body = {"meta": {"api-version": API_VERSION}, "projects": [{"name": n} for n in names]}
    return json.dumps(body, separators=(",", ":")).encode()


def index_html(prefix: str, names: list[str]) -> bytes:
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "<head>",
        f'<meta name="pypi:repository-version" content="{API_VERSION}">',
        "<title>Simple index</title>",
        "</head>",
        "<body>",
    ]
    for name in names:
        escaped = html.escape(name)
        lines.append(f'<a href="{prefix}/simple/{escaped}/">{escaped}</a><br/>')
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines).encode()
