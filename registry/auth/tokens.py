"""API tokens: random secrets shown once and stored only as SHA-256 hashes.

A plain SHA-256 is the right hash here (as for GitHub's tokens): the secret has
256 bits of entropy, so a slow password hash would add latency to every request
without adding resistance to guessing.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "arb_"  # noqa: S105 - a public prefix, not a secret


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
