"""Who is asking on ``/v2``, and the Docker token-auth challenge that tells clients how to ask.

Three kinds of credentials are accepted:

* a registry token from ``/v2/token`` (``Bearer <JWS>``): short-lived, names
  the subject and the scopes (``pull``/``push``/``delete`` per OCI name) it
  was issued for, and is good for nothing else;
* an Arbiter API token directly, as ``Bearer`` or as HTTP Basic password
  (crane, skopeo and CI scripts use Basic);
* nothing: the anonymous subject, whom the policy may still let pull from a
  public repository.

A token only narrows authentication; every request is still decided by the
policy. When a registry token lacks the scope a request needs, the client is
challenged for it, unless the policy would refuse anyway, in which case the
refusal (with its reasons) is what the client sees.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from starlette.requests import Request

from registry.auth import ANONYMOUS, Subject, parse_authorization
from registry.errors import Unauthorized
from registry.formats.oci import jws
from registry.services import Services

SERVICE = "arbiter"
ISSUER = "arbiter"
TOKEN_PATH = "/v2/token"  # noqa: S105 - a URL path, not a secret
PULL = "pull"
PUSH = "push"
DELETE = "delete"
SCOPE_ACTIONS = (PULL, PUSH, DELETE)
KEY_FILE = Path("keys") / "oci-token.key"
CLOCK_SKEW_S = 30  # between instances sharing the key


@dataclass(frozen=True)
class Credentials:
    """The subject of a request and, for registry tokens, what the token grants."""

    subject: Subject
    access: dict[str, frozenset[str]] | None = None  # OCI name -> actions; None: not scoped

    def grants(self, name: str, action: str) -> bool:
        return self.access is None or action in self.access.get(name, frozenset())


@lru_cache(maxsize=8)
def _key(path: Path) -> bytes:
    return jws.load_key(path)


def signing_key(services: Services) -> bytes:
    return _key(services.settings.data / KEY_FILE)


def authenticate(request: Request, services: Services) -> Credentials:
    """Resolve the ``Authorization`` header; a bad one is :class:`Unauthorized`."""
    header = request.headers.get("authorization")
    if not header:
        return Credentials(ANONYMOUS)
    parsed = parse_authorization(header)
    if parsed is not None and parsed[0] is None and jws.is_jws(parsed[1]):
        return _registry_token(parsed[1], signing_key(services))
    return Credentials(services.authenticator.authenticate(header))


# A client sends the same registry token with every request of a pull; its
# signature and claims need checking once. Entries are only ever added after
# a full check and are used only before the token's own expiry.
_VERIFIED: dict[tuple[bytes, str], tuple[Credentials, float]] = {}
_MAX_VERIFIED = 4096


def _registry_token(token: str, key: bytes) -> Credentials:
    known = _VERIFIED.get((key, token))
    if known is not None and known[1] > time.time():
        return known[0]
    claims = jws.verify(token, key)
    credentials = _from_token(claims)
    if len(_VERIFIED) >= _MAX_VERIFIED:
        _VERIFIED.clear()
    _VERIFIED[(key, token)] = (credentials, float(claims["exp"]))
    return credentials


def _from_token(claims: dict[str, Any]) -> Credentials:
    now = time.time()
    if claims.get("iss") != ISSUER or claims.get("aud") != SERVICE:
        raise Unauthorized("the registry token was issued for another service")
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] <= now:
        raise Unauthorized("the registry token has expired; request a new one from /v2/token")
    if isinstance(claims.get("nbf"), int | float) and claims["nbf"] > now + CLOCK_SKEW_S:
        raise Unauthorized("the registry token is not valid yet; check the clocks")
    who = claims.get("arbiter") or {}
    subject = Subject(
        id=str(claims.get("sub", "")),
        kind=str(who.get("kind", "anonymous")),
        roles=tuple(who.get("roles", ())),
        teams=tuple(who.get("teams", ())),
        user_id=who.get("uid"),
    )
    access: dict[str, frozenset[str]] = {}
    for entry in claims.get("access", ()):
        if isinstance(entry, dict) and entry.get("type") == "repository":
            name = str(entry.get("name", ""))
            access[name] = access.get(name, frozenset()) | frozenset(entry.get("actions", ()))
    return Credentials(subject, access)


def issue(services: Services, subject: Subject, access: list[dict[str, Any]], ttl: int) -> str:
    """Sign a registry token for ``subject`` carrying exactly ``access``."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": SERVICE,
        "sub": subject.id,
        "iat": now,
        "nbf": now - 5,
        "exp": now + ttl,
        "access": access,
        "arbiter": {
            "kind": subject.kind,
            "roles": list(subject.roles),
            "teams": list(subject.teams),
            "uid": subject.user_id,
        },
    }
    return jws.sign(claims, signing_key(services))


def challenge(request: Request, scope: str | None = None) -> str:
    """``WWW-Authenticate`` value pointing the client at the token endpoint."""
    realm = str(request.base_url).rstrip("/") + TOKEN_PATH
    value = f'Bearer realm="{realm}",service="{SERVICE}"'
    if scope:
        value += f',scope="{scope}"'
    return value


def scope_of(name: str, *actions: str) -> str:
    return f"repository:{name}:{','.join(actions)}"
