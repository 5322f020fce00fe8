"""First start: make sure an administrator exists and can be reached.

With ``ARBITER_BOOTSTRAP_TOKEN`` the admin holds that token (for automation);
without it a random token is printed once. Either way only its hash is stored.
"""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from registry.auth.subject import SYSTEM
from registry.auth.tokens import hash_token, new_token
from registry.config import Settings
from registry.db.models import ApiToken, RoleBinding, User
from registry.governance import Governor


def ensure_admin(governor: Governor, bootstrap_token: str | None) -> str | None:
    """Create ``admin`` on an empty user table; return the token to show, if new."""
    with governor.db.reader() as session:
        if session.exec(select(User.id)).first() is not None:
            return None
    token = bootstrap_token or new_token()

    def create(session: Session) -> None:
        admin = User(name="admin", kind="user")
        session.add(admin)
        session.flush()
        assert admin.id is not None
        session.add(ApiToken(user_id=admin.id, name="bootstrap", token_hash=hash_token(token)))
        session.add(RoleBinding(role="admin", user_id=admin.id))

    try:
        governor.record(
            SYSTEM,
            "user.create",
            {"user": "admin"},
            create,
            details={"role": "admin", "token": "bootstrap"},
        )
    except IntegrityError:
        return None  # another instance bootstrapped the same database first
    return None if bootstrap_token else token


# Settings that are secret or that only say where this instance listens.
UNRECORDED_SETTINGS = frozenset({"bootstrap_token", "host", "port", "log_level"})


def record_configuration(governor: Governor, settings: Settings) -> None:
    """Audit the configuration an instance starts with, when it differs from the last one.

    A changed policy engine, database or upload limit is a change an auditor
    must be able to see; an unchanged restart adds nothing to the log.
    """
    config = settings.model_dump(mode="json", exclude=set(UNRECORDED_SETTINGS))
    with governor.db.reader() as session:
        last = (
            session.connection()
            .execute(
                text(
                    "SELECT details FROM audit_events WHERE action = 'config.load' "
                    "ORDER BY seq DESC LIMIT 1"
                )
            )
            .scalar()
        )
    if last is not None and json.loads(last).get("settings") == config:
        return
    governor.record(
        SYSTEM, "config.load", {"instance": "arbiter"}, lambda _s: None, {"settings": config}
    )
