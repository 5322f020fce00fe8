"""Signed, short-lived links to one stored blob.

When the download listener is on, a governed blob GET (the pull decision and
its audit event already done) answers ``307`` with such a link, as
distribution and Artifactory redirect to presigned object-store URLs. The
link is a capability for one blob and a short time: HMAC-SHA256, with a key
in the data directory that every worker and instance on it shares, over the
storage digest, the digest the client asked for (sent back as
``Docker-Content-Digest``; a sha512 blob is stored under its sha256) and the
expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from registry.config import Settings
from registry.keyfile import load_key

KEY_FILE = Path("keys") / "download-links.key"
PATH_PREFIX = "/blobs/"


class LinkRefused(Exception):
    """A link that is malformed, forged or expired; the message says which."""


@dataclass(frozen=True)
class DownloadLinks:
    """Mints and checks links to the listener at ``port`` (or at ``base_url``)."""

    key: bytes
    port: int
    ttl_s: int
    base_url: str | None = None
    min_size: int = 0
    clock: Callable[[], float] = field(default=time.time)

    @classmethod
    def from_settings(cls, settings: Settings) -> DownloadLinks | None:
        """The instance's links, or ``None`` when the listener is off."""
        if settings.download_port is None:
            return None
        return cls(
            key=load_key(settings.data / KEY_FILE),
            port=settings.download_port,
            ttl_s=settings.download_link_ttl_s,
            base_url=settings.download_url,
            min_size=settings.download_min_size,
        )

    def serves(self, size: int) -> bool:
        """Whether a blob of ``size`` bytes is worth a redirect to the listener."""
        return size >= self.min_size

    def link(self, storage_digest: str, digest: str, hostname: str) -> str:
        """Where to fetch ``storage_digest`` (asked for as ``digest``): the
        configured base URL, or the host name the client used (``hostname``)
        with the listener's port."""
        expires = int(self.clock()) + self.ttl_s
        signature = self._mac(storage_digest, digest, expires)
        query = urlencode({"digest": digest, "expires": expires, "signature": signature})
        return f"{self._base(hostname)}{PATH_PREFIX}{storage_digest}?{query}"

    def check(self, storage_digest: str, digest: str, expires: str, signature: str) -> None:
        """Raise :class:`LinkRefused` unless the link is ours and unexpired."""
        if not expires.isdigit():
            raise LinkRefused("the download link has no valid expiry")
        if not hmac.compare_digest(self._mac(storage_digest, digest, int(expires)), signature):
            raise LinkRefused("the download link's signature does not match")
        if int(expires) < self.clock():
            raise LinkRefused(f"the download link expired (links last {self.ttl_s} s)")

    def _mac(self, storage_digest: str, digest: str, expires: int) -> str:
        message = f"{storage_digest}\n{digest}\n{expires}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def _base(self, hostname: str) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        host = f"[{hostname}]" if ":" in hostname else hostname  # an IPv6 literal
        return f"http://{host}:{self.port}"
