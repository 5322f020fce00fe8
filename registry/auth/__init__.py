"""Authentication: who the subject of a request is."""

from registry.auth.authenticator import Authenticator, parse_authorization, roles_of
from registry.auth.subject import ANONYMOUS, Subject
from registry.auth.tokens import hash_token, new_token

__all__ = [
    "ANONYMOUS",
    "Authenticator",
    "Subject",
    "hash_token",
    "new_token",
    "parse_authorization",
    "roles_of",
]
