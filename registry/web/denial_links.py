"""Putting a policy's reasons where pip and uv print them: in the URL of the 403.

On a refused download pip prints only ``403 Client Error: Forbidden for url:
<url>`` and uv ``HTTP status client error (403 Forbidden) for url (<url>)``.
PyPI puts its message in the HTTP reason phrase, which no ASGI server can set,
and neither client shows a body. Both follow redirects and print the final
URL, so for these clients a denial answers ``303 See Other`` to
``.../-/denied/<the reasons as a slug>?proof=<MAC>``, which answers 403 with
the reasons. The MAC (HMAC-SHA256 over the repository and the slug, with a key
in the data directory) keeps anyone from minting such pages with words of
their own; the exact reasons are in the body of the first answer and in the
audit event, as for every other client.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from registry.keyfile import load_key

KEY_FILE = Path("keys") / "denial-links.key"
MAX_SLUG = 160
# Clients that show a refusal's status line and URL, never its body.
STATUS_LINE_CLIENTS = ("pip/", "uv/")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def shows_only_status_line(user_agent: str) -> bool:
    return user_agent.startswith(STATUS_LINE_CLIENTS)


def slug(reasons: Sequence[str]) -> str:
    """``artifact-is-quarantined-label-quarantine-and-cannot-be-pulled``, at most 160 chars."""
    text = _NOT_SLUG.sub("-", "; ".join(reasons).lower()).strip("-") or "denied-by-policy"
    if len(text) > MAX_SLUG:
        text = text[:MAX_SLUG].rsplit("-", 1)[0]
    return text


@lru_cache(maxsize=8)
def _key(data: Path) -> bytes:
    return load_key(data / KEY_FILE)


def proof(data: Path, repository: str, text: str) -> str:
    message = f"{repository}\n{text}".encode()
    return hmac.new(_key(data), message, hashlib.sha256).hexdigest()[:32]


def location(data: Path, prefix: str, repository: str, reasons: Sequence[str]) -> str:
    """Where to send the client: ``{prefix}/-/denied/{slug}?proof={mac}``."""
    text = slug(reasons)
    return f"{prefix}/-/denied/{quote(text)}?proof={proof(data, repository, text)}"


def verified(data: Path, repository: str, text: str, claimed: str) -> bool:
    return hmac.compare_digest(proof(data, repository, text), claimed)
