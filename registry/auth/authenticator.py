"""Turn an ``Authorization`` header into a :class:`Subject`.

Bearer tokens and HTTP Basic (user + token; twine's ``__token__`` user too)
are accepted. No header at all is the anonymous subject, whom the policy may
still allow; a header that does not check out is always a 401.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from registry.auth.subject import ANONYMOUS, Subject
from registry.auth.tokens import hash_token
from registry.db import Database
from registry.db.models import ApiToken, RoleBinding, Team, TeamMember, User
from registry.errors import Unauthorized

TOKEN_USERNAMES = frozenset({"__token__", "token", "oauth2accesstoken"})


def parse_authorization(header: str | None) -> tuple[str | None, str] | None:
    """``(username or None, secret)`` from a Basic or Bearer header, None if absent."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer" and value:
        return None, value
    if scheme == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Unauthorized("malformed Basic credentials") from exc
        user, sep, secret = decoded.partition(":")
        if not sep or not secret:
            raise Unauthorized("Basic credentials need a user name and a token as password")
        return user, secret
    raise Unauthorized(f"unsupported authorization scheme {scheme!r}; use Bearer or Basic")


def roles_of(session: Session, user: User) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The user's roles (own and via teams) in policy notation, and team names."""
    teams = session.exec(
        select(Team)
        .join(TeamMember, col(TeamMember.team_id) == col(Team.id))
        .where(TeamMember.user_id == user.id)
    ).all()
    team_ids = [t.id for t in teams]
    bindings = session.exec(
        select(RoleBinding).where(
            (RoleBinding.user_id == user.id) | (RoleBinding.team_id.in_(team_ids))  # type: ignore[union-attr]
        )
    ).all()
    roles = sorted(
        {b.role if b.repository is None else f"{b.role}:{b.repository}" for b in bindings}
    )
    return tuple(roles), tuple(sorted(t.name for t in teams))


# How long a resolved credential is reused without asking the database again.
# Package clients send the same token on every request; a revocation or role
# change made through this process clears the cache at once, one made through
# another instance is seen within this time.
CACHE_SECONDS = 5.0
CACHE_ENTRIES = 4096


class Authenticator:
    """Resolves credentials against the token table, with a short-lived cache."""

    def __init__(self, db: Database, cache_seconds: float = CACHE_SECONDS) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str | None, str], tuple[float, Subject]] = {}
        self._lock = threading.Lock()

    def authenticate(self, header: str | None) -> Subject:
        credentials = parse_authorization(header)
        if credentials is None:
            return ANONYMOUS
        username, secret = credentials
        key = (username, hash_token(secret))
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        with self.db.reader() as session:
            subject = self._subject_for(session, username, secret)
        with self._lock:
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            self._cache[key] = (now + self.cache_seconds, subject)
        return subject

    def forget(self) -> None:
        """Drop every cached credential (after a change of users, tokens or roles)."""
        with self._lock:
            self._cache.clear()

    def _subject_for(self, session: Session, username: str | None, secret: str) -> Subject:
        token = session.exec(
            select(ApiToken).where(ApiToken.token_hash == hash_token(secret))
        ).first()
        if token is None:
            raise Unauthorized("invalid credentials: unknown token")
        if token.expires_at is not None and _aware(token.expires_at) <= datetime.now(UTC):
            raise Unauthorized("invalid credentials: the token has expired; create a new one")
        user = session.get(User, token.user_id)
        if user is None or user.disabled:
            raise Unauthorized("invalid credentials: the user is disabled")
        if username is not None and username not in TOKEN_USERNAMES and username != user.name:
            raise Unauthorized("invalid credentials: the token belongs to another user")
        roles, teams = roles_of(session, user)
        return Subject(
            id=user.name,
            kind=user.kind,
            roles=roles,
            teams=teams,
            user_id=user.id,
            scopes=tuple(token.scopes),
        )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
