"""Compact JWS (HS256) for registry bearer tokens, written out by hand.

The registry is both the issuer and the only verifier of these tokens, so a
shared-secret MAC is all the signature needs to be, and HS256 is a dozen lines
of the standard library. That is why there is no JWT dependency (PyJWT is not
one of the project's dependencies): nothing here parses foreign tokens, picks
algorithms from the header or verifies keys from elsewhere; the header is
fixed and any other is refused.

The key is 32 random bytes in ``<data>/keys/oci-token.key`` (mode 0600),
created on first use; instances that share a data directory share it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from registry.errors import Unauthorized
from registry.keyfile import KEY_BYTES, load_key

_HEADER = {"alg": "HS256", "typ": "JWT"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER_B64 = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())


def sign(claims: dict[str, Any], key: bytes) -> str:
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{_HEADER_B64}.{payload}".encode("ascii")
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return f"{_HEADER_B64}.{payload}.{_b64(signature)}"


def verify(token: str, key: bytes) -> dict[str, Any]:
    """The claims of a token this registry signed; :class:`Unauthorized` for anything else."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _HEADER_B64:
        raise Unauthorized("invalid registry token; request a new one from /v2/token")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    expected = hmac.new(key, signing_input, hashlib.sha256).digest()
    try:
        signature = _unb64(parts[2])
        claims = json.loads(_unb64(parts[1]))
    except (binascii.Error, ValueError):
        raise Unauthorized("invalid registry token; request a new one from /v2/token") from None
    if not hmac.compare_digest(signature, expected) or not isinstance(claims, dict):
        raise Unauthorized("invalid registry token signature; request a new one from /v2/token")
    return claims


def is_jws(secret: str) -> bool:
    """Registry tokens are three dot-separated parts; Arbiter API tokens have no dots."""
    return secret.count(".") == 2


__all__ = ["KEY_BYTES", "is_jws", "load_key", "sign", "verify"]
