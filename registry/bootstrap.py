"""First start: make sure an administrator exists and can be reached.

With ``ARBITER_BOOTSTRAP_TOKEN`` the admin holds that token (for automation);
without it a random token is printed once. Either way only its hash is stored.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from registry.auth.subject import Subject
from registry.auth.tokens import hash_token, new_token
from registry.db.models import ApiToken, RoleBinding, User
from registry.governance import Governor

SYSTEM = Subject(id="system", kind="robot", roles=("admin",))


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
