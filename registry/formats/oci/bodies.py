"""Manifest bytes by digest, kept in memory: the body of every manifest GET.

A manifest is a few kilobytes, named by the digest of its bytes and never
changed, and the busiest request of a registry serves it again and again.
Opening, statting and reading its blob file was a tenth of that request's CPU
(measured with ``wrk -c16`` on the 2-core loopback machine). What is kept here
is only served after the request found the manifest's row and the policy
allowed the pull, so a deleted manifest is not served from memory; a key is
the digest of its bytes, so an entry can never go stale.

``functools.lru_cache`` cannot bound by bytes, hence the few lines below.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from registry.blobs import BlobStore

BUDGET_BYTES = 32 * 1024 * 1024
LARGEST_KEPT = 1024 * 1024  # larger manifests (up to the 4 MiB limit) are read each time

_bodies: OrderedDict[str, bytes] = OrderedDict()
_held = 0
_lock = threading.Lock()


def manifest_body(blobs: BlobStore, storage_digest: str) -> bytes:
    """The stored bytes of the manifest blob ``storage_digest``."""
    with _lock:
        body = _bodies.get(storage_digest)
        if body is not None:
            _bodies.move_to_end(storage_digest)
            return body
    body = blobs.path_of(storage_digest).read_bytes()
    if len(body) <= LARGEST_KEPT:
        _keep(storage_digest, body)
    return body


def _keep(storage_digest: str, body: bytes) -> None:
    global _held
    with _lock:
        if storage_digest in _bodies:
            return
        _bodies[storage_digest] = body
        _held += len(body)
        while _held > BUDGET_BYTES:
            _evicted, dropped = _bodies.popitem(last=False)
            _held -= len(dropped)


def forget_all() -> None:
    """Empty the cache (tests that rewrite blob files under a digest use it)."""
    global _held
    with _lock:
        _bodies.clear()
        _held = 0
