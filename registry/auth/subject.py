"""Who is asking: the subject every policy decision is about."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Subject:
    """An authenticated user or robot, or the anonymous subject.

    ``roles`` use the policy's notation: ``"admin"`` for a global binding and
    ``"writer:REPO"`` for one scoped to a repository.
    """

    id: str
    kind: str
    roles: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    user_id: int | None = None
    scopes: tuple[str, ...] = field(default=())

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"

    def has_role(self, role: str, repository: str | None = None) -> bool:
        """True for a global binding of ``role`` or one scoped to ``repository``."""
        return role in self.roles or (
            repository is not None and f"{role}:{repository}" in self.roles
        )

    def to_policy(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "roles": list(self.roles),
            "teams": list(self.teams),
        }

    def to_actor(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind}


ANONYMOUS = Subject(id="anonymous", kind="anonymous")
# The registry itself, for changes no person asked for (bootstrap, file-watch reloads).
SYSTEM = Subject(id="system", kind="robot", roles=("admin",))
