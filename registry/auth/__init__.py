"""Authentication: who the subject of a request is."""

from registry.auth.authenticator import Authenticator, parse_authorization, roles_of
from registry.auth.subject import ANONYMOUS, SYSTEM, Subject
from registry.auth.tokens import hash_token, new_token

__all__ = [
    "ANONYMOUS",
    "SYSTEM",
    "Authenticator",
    "Subject",
    "hash_token",
    "new_token",
    "parse_authorization",
    "roles_of",
]
