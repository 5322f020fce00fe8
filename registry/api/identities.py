"""Identities: users and robots, teams, API tokens, role bindings and ``whoami``.

Every change goes through ``Governor.record`` so its audit event commits in the
same transaction. Token secrets are returned once and stored only as hashes;
neither the secret nor its hash ever enters an audit event.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from registry.auth import Subject, hash_token, new_token, roles_of
from registry.auth.authenticator import TOKEN_USERNAMES
from registry.db.models import ApiToken, Repository, RoleBinding, Team, TeamMember, User
from registry.errors import Conflict, Forbidden, NotFound
from registry.web.deps import AdminDep, ServicesDep, SubjectDep, UserDep, get_services

NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._@-]{0,126}[A-Za-z0-9])?$")
# Names that would be confused with the anonymous subject, the bootstrap actor
# or the user names package clients send with a bare token.
RESERVED_NAMES = frozenset({"anonymous", "system", *TOKEN_USERNAMES})
MAX_TOKEN_DAYS = 3650
MAX_SCOPES = 32


def forget_credentials(request: Request) -> Iterator[None]:
    """After a change of users, tokens, teams or roles, cached credentials are stale."""
    yield
    if request.method not in ("GET", "HEAD"):
        get_services(request).authenticator.forget()


router = APIRouter(tags=["identities"], dependencies=[Depends(forget_credentials)])


def _identity_name(name: str) -> str:
    if not NAME.match(name):
        raise ValueError(
            "use 1-128 letters, digits, '.', '_', '@' or '-', "
            "starting and ending with a letter or digit"
        )
    if name.lower() in RESERVED_NAMES:
        raise ValueError(f"{name!r} is reserved; choose another name")
    return name


IdentityName = Annotated[str, AfterValidator(_identity_name)]
Scope = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9:._*/-]{1,64}$")]
Role = Literal["reader", "writer", "maintainer", "admin"]


class Strict(BaseModel):
    """Unknown fields are refused: a misspelt ``repository`` must not grant globally."""

    model_config = ConfigDict(extra="forbid")


class UserIn(Strict):
    name: IdentityName
    kind: Literal["user", "robot"] = "user"


class TeamIn(Strict):
    name: IdentityName


class MemberIn(Strict):
    user: str


class TokenIn(Strict):
    name: str = Field(default="", max_length=128)
    scopes: list[Scope] = Field(default_factory=list, max_length=MAX_SCOPES)
    expires_in_days: int | None = Field(default=None, ge=1, le=MAX_TOKEN_DAYS)


class RoleBindingIn(Strict):
    role: Role
    repository: str | None = Field(default=None, description="null binds globally")
    user: str | None = None
    team: str | None = None

    @model_validator(mode="after")
    def _one_holder(self) -> RoleBindingIn:
        if (self.user is None) == (self.team is None):
            raise ValueError("give exactly one of 'user' or 'team'")
        return self


class UserOut(BaseModel):
    name: str
    kind: str
    disabled: bool
    created_at: datetime


class UserDetail(UserOut):
    roles: list[str]
    teams: list[str]


class TeamOut(BaseModel):
    name: str
    members: list[str]
    created_at: datetime


class TokenOut(BaseModel):
    id: int
    user: str
    name: str
    scopes: list[str]
    expires_at: datetime | None
    created_at: datetime
    expired: bool


class TokenCreated(TokenOut):
    token: str = Field(description="The secret; shown once and never stored.")


class RoleBindingOut(BaseModel):
    id: int
    role: str
    repository: str | None
    user: str | None
    team: str | None
    created_at: datetime


class WhoAmI(BaseModel):
    id: str
    kind: str
    roles: list[str]
    teams: list[str]
    scopes: list[str]


# --- lookups -----------------------------------------------------------------


def _user(session: Session, name: str) -> User:
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise NotFound(f"user {name!r} not found; 'arbiter admin user list' shows users")
    return user


def _team(session: Session, name: str) -> Team:
    team = session.exec(select(Team).where(Team.name == name)).first()
    if team is None:
        raise NotFound(f"team {name!r} not found; create it with 'arbiter admin team create'")
    return team


def _require_self_or_admin(subject: Subject, name: str) -> None:
    if subject.id != name and not subject.has_role("admin"):
        raise Forbidden(f"{subject.id} may only manage their own account and tokens")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _user_out(user: User) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


def _team_out(session: Session, team: Team) -> TeamOut:
    members = session.exec(
        select(User.name)
        .join(TeamMember, col(TeamMember.user_id) == col(User.id))
        .where(TeamMember.team_id == team.id)
        .order_by(col(User.name))
    ).all()
    return TeamOut(name=team.name, members=list(members), created_at=team.created_at)


def _token_out(token: ApiToken, owner: str, now: datetime) -> TokenOut:
    expired = token.expires_at is not None and _aware(token.expires_at) <= now
    return TokenOut(
        id=token.id or 0,
        user=owner,
        name=token.name,
        scopes=list(token.scopes),
        expires_at=token.expires_at,
        created_at=token.created_at,
        expired=expired,
    )


def _binding_out(session: Session, binding: RoleBinding) -> RoleBindingOut:
    user = session.get(User, binding.user_id) if binding.user_id is not None else None
    team = session.get(Team, binding.team_id) if binding.team_id is not None else None
    return RoleBindingOut(
        id=binding.id or 0,
        role=binding.role,
        repository=binding.repository,
        user=user.name if user else None,
        team=team.name if team else None,
        created_at=binding.created_at,
    )


# --- users -------------------------------------------------------------------


@router.post("/users", status_code=201)
def create_user(body: UserIn, services: ServicesDep, admin: AdminDep) -> UserOut:
    def apply(session: Session) -> User:
        user = User(name=body.name, kind=body.kind)
        session.add(user)
        session.flush()
        return user

    try:
        user = services.governor.record(
            admin, "user.create", {"user": body.name}, apply, {"kind": body.kind}
        )
    except IntegrityError as error:
        raise Conflict(f"user {body.name!r} already exists") from error
    return _user_out(user)


@router.get("/users")
def list_users(services: ServicesDep, _admin: AdminDep) -> list[UserOut]:
    with services.db.reader() as session:
        return [_user_out(u) for u in session.exec(select(User).order_by(col(User.name))).all()]


@router.get("/users/{name}")
def get_user(name: str, services: ServicesDep, subject: UserDep) -> UserDetail:
    _require_self_or_admin(subject, name)
    with services.db.reader() as session:
        user = _user(session, name)
        roles, teams = roles_of(session, user)
        return UserDetail(**_user_out(user).model_dump(), roles=list(roles), teams=list(teams))


@router.delete("/users/{name}", status_code=204)
def disable_user(name: str, services: ServicesDep, admin: AdminDep) -> Response:
    """Disable rather than delete: the audit log keeps naming the user's past actions."""
    if name == admin.id:
        raise Conflict("you cannot disable yourself; ask another administrator")

    def apply(session: Session) -> None:
        user = _user(session, name)
        user.disabled = True
        session.add(user)

    services.governor.record(admin, "user.disable", {"user": name}, apply)
    return Response(status_code=204)


# --- teams -------------------------------------------------------------------


@router.post("/teams", status_code=201)
def create_team(body: TeamIn, services: ServicesDep, admin: AdminDep) -> TeamOut:
    def apply(session: Session) -> TeamOut:
        team = Team(name=body.name)
        session.add(team)
        session.flush()
        return _team_out(session, team)

    try:
        return services.governor.record(admin, "team.create", {"team": body.name}, apply)
    except IntegrityError as error:
        raise Conflict(f"team {body.name!r} already exists") from error


@router.get("/teams")
def list_teams(services: ServicesDep, _admin: AdminDep) -> list[TeamOut]:
    with services.db.reader() as session:
        teams = session.exec(select(Team).order_by(col(Team.name))).all()
        return [_team_out(session, team) for team in teams]


@router.post("/teams/{team}/members", status_code=201)
def add_member(team: str, body: MemberIn, services: ServicesDep, admin: AdminDep) -> TeamOut:
    def apply(session: Session) -> TeamOut:
        row, user = _team(session, team), _user(session, body.user)
        session.add(TeamMember(team_id=row.id or 0, user_id=user.id or 0))
        session.flush()
        return _team_out(session, row)

    resource = {"team": team, "user": body.user}
    try:
        return services.governor.record(admin, "team.member_add", resource, apply)
    except IntegrityError as error:
        raise Conflict(f"{body.user!r} is already a member of {team!r}") from error


@router.delete("/teams/{team}/members/{user}", status_code=204)
def remove_member(team: str, user: str, services: ServicesDep, admin: AdminDep) -> Response:
    def apply(session: Session) -> None:
        row, member = _team(session, team), _user(session, user)
        link = session.get(TeamMember, (row.id, member.id))
        if link is None:
            raise NotFound(f"{user!r} is not a member of {team!r}")
        session.delete(link)

    services.governor.record(admin, "team.member_remove", {"team": team, "user": user}, apply)
    return Response(status_code=204)


# --- tokens ------------------------------------------------------------------


def _check_scopes(subject: Subject, wanted: list[str]) -> None:
    """A scoped token may only mint tokens within its own scopes (no escalation)."""
    if not subject.scopes:
        return
    extra = sorted(set(wanted) - set(subject.scopes)) if wanted else ["(unscoped)"]
    if extra:
        raise Forbidden(
            f"a token scoped to {sorted(subject.scopes)} cannot create a token with {extra}"
        )


@router.post("/users/{name}/tokens", status_code=201)
def create_token(name: str, body: TokenIn, services: ServicesDep, subject: UserDep) -> TokenCreated:
    _require_self_or_admin(subject, name)
    _check_scopes(subject, body.scopes)
    now = services.governor.clock()
    expires_at = now + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    secret = new_token()
    # record() seals the event after apply returns, so the id the flush assigns
    # is in the event: revocations can then be matched to creations.
    resource: dict[str, Any] = {"user": name}

    def apply(session: Session) -> ApiToken:
        user = _user(session, name)
        if user.disabled:
            raise Conflict(f"user {name!r} is disabled; tokens cannot be created for it")
        token = ApiToken(
            user_id=user.id or 0,
            name=body.name,
            token_hash=hash_token(secret),
            scopes=list(body.scopes),
            expires_at=expires_at,
            created_at=now,
        )
        session.add(token)
        session.flush()
        resource["token"] = token.id
        return token

    details = {"name": body.name, "scopes": list(body.scopes), "expires_at": _iso(expires_at)}
    token = services.governor.record(subject, "token.create", resource, apply, details)
    return TokenCreated(**_token_out(token, name, now).model_dump(), token=secret)


@router.get("/users/{name}/tokens")
def list_tokens(name: str, services: ServicesDep, subject: UserDep) -> list[TokenOut]:
    _require_self_or_admin(subject, name)
    now = services.governor.clock()
    with services.db.reader() as session:
        user = _user(session, name)
        tokens = session.exec(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(col(ApiToken.id))
        ).all()
        return [_token_out(token, name, now) for token in tokens]


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, services: ServicesDep, subject: UserDep) -> Response:
    """Owners and admins may revoke; anyone else is told it does not exist."""
    with services.db.reader() as session:
        token = session.get(ApiToken, token_id)
        owner = session.get(User, token.user_id) if token is not None else None
        owner_name = owner.name if owner is not None else None
    if owner_name is None or (owner_name != subject.id and not subject.has_role("admin")):
        raise NotFound(f"token {token_id} not found; 'arbiter admin token list USER' shows ids")

    def apply(session: Session) -> None:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"token {token_id} not found")
        session.delete(row)

    resource = {"user": owner_name, "token": token_id}
    services.governor.record(subject, "token.revoke", resource, apply)
    return Response(status_code=204)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


# --- role bindings -----------------------------------------------------------


def _holder(session: Session, body: RoleBindingIn) -> tuple[int | None, int | None]:
    """The user and team ids the binding goes to, checking that they exist."""
    if body.user is not None:
        return _user(session, body.user).id, None
    assert body.team is not None
    return None, _team(session, body.team).id


def _check_repository(session: Session, name: str | None) -> None:
    if name is None:
        return
    if session.exec(select(Repository.id).where(Repository.name == name)).first() is None:
        raise NotFound(f"repository {name!r} not found; 'arbiter repo list' shows repositories")


def _duplicate(session: Session, binding: RoleBinding) -> bool:
    return (
        session.exec(
            select(RoleBinding.id).where(
                RoleBinding.role == binding.role,
                RoleBinding.repository == binding.repository,
                RoleBinding.user_id == binding.user_id,
                RoleBinding.team_id == binding.team_id,
            )
        ).first()
        is not None
    )


@router.post("/role-bindings", status_code=201)
def create_role_binding(
    body: RoleBindingIn, services: ServicesDep, admin: AdminDep
) -> RoleBindingOut:
    resource: dict[str, Any] = {"repository": body.repository} if body.repository else {}

    def apply(session: Session) -> RoleBindingOut:
        _check_repository(session, body.repository)
        user_id, team_id = _holder(session, body)
        binding = RoleBinding(
            role=body.role, repository=body.repository, user_id=user_id, team_id=team_id
        )
        if _duplicate(session, binding):
            raise Conflict("this role binding already exists")
        session.add(binding)
        session.flush()
        resource["role_binding"] = binding.id  # see create_token: sealed after apply
        return _binding_out(session, binding)

    details = body.model_dump()
    return services.governor.record(admin, "role_binding.create", resource, apply, details)


@router.get("/role-bindings")
def list_role_bindings(
    services: ServicesDep,
    _admin: AdminDep,
    user: Annotated[str | None, Query()] = None,
    team: Annotated[str | None, Query()] = None,
    repository: Annotated[str | None, Query()] = None,
) -> list[RoleBindingOut]:
    with services.db.reader() as session:
        query = select(RoleBinding).order_by(col(RoleBinding.id))
        if user is not None:
            query = query.where(RoleBinding.user_id == _user(session, user).id)
        if team is not None:
            query = query.where(RoleBinding.team_id == _team(session, team).id)
        if repository is not None:
            query = query.where(RoleBinding.repository == repository)
        return [_binding_out(session, b) for b in session.exec(query).all()]


def _is_last_global_admin(session: Session, binding: RoleBinding) -> bool:
    if binding.role != "admin" or binding.repository is not None:
        return False
    others = session.exec(
        select(RoleBinding.id).where(
            RoleBinding.role == "admin",
            col(RoleBinding.repository).is_(None),
            RoleBinding.id != binding.id,
        )
    ).first()
    return others is None


@router.delete("/role-bindings/{binding_id}", status_code=204)
def delete_role_binding(binding_id: int, services: ServicesDep, admin: AdminDep) -> Response:
    with services.db.reader() as session:
        found = session.get(RoleBinding, binding_id)
        if found is None:
            raise NotFound(
                f"role binding {binding_id} not found; 'arbiter admin grants' lists them"
            )
        details = _binding_out(session, found).model_dump(exclude={"id", "created_at"})

    def apply(session: Session) -> None:
        binding = session.get(RoleBinding, binding_id)
        if binding is None:
            raise NotFound(f"role binding {binding_id} not found")
        if _is_last_global_admin(session, binding):
            raise Conflict("this is the last global admin binding; grant admin to another first")
        session.delete(binding)

    resource = {"role_binding": binding_id}
    services.governor.record(admin, "role_binding.delete", resource, apply, details)
    return Response(status_code=204)


# --- whoami ------------------------------------------------------------------


@router.get("/whoami")
def whoami(subject: SubjectDep) -> WhoAmI:
    """Anonymous callers get an answer too: it tells them no token was sent."""
    return WhoAmI(
        id=subject.id,
        kind=subject.kind,
        roles=list(subject.roles),
        teams=list(subject.teams),
        scopes=list(subject.scopes),
    )
