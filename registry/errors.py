"""The registry's error types, each with the HTTP status it maps to.

Adapters render these in their protocol's own format (OCI error JSON, the
management API's ``{"error": {...}}``, the text pip and npm print); the
messages say what to do next.
"""

from __future__ import annotations

from collections.abc import Sequence


class ArbiterError(Exception):
    """Root of every error a client may see."""

    status = 500
    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ArbiterError):
    status = 400
    code = "BAD_REQUEST"


class WrongFormat(BadRequest):
    """The repository holds another format's artifacts (an npm publish to a Python one)."""

    code = "WRONG_FORMAT"


class Unauthorized(ArbiterError):
    """Missing or wrong credentials; rendered with a ``WWW-Authenticate`` challenge."""

    status = 401
    code = "UNAUTHORIZED"


class Forbidden(ArbiterError):
    status = 403
    code = "DENIED"


class PolicyDenied(Forbidden):
    """The policy said no; the reasons are the policy's own sentences."""

    def __init__(self, reasons: Sequence[str], *, anonymous: bool = False) -> None:
        self.reasons = tuple(reasons) or ("denied by policy",)
        self.anonymous = anonymous
        super().__init__("denied by policy: " + "; ".join(self.reasons))


class NotFound(ArbiterError):
    status = 404
    code = "NOT_FOUND"


class Conflict(ArbiterError):
    status = 409
    code = "CONFLICT"


class PayloadTooLarge(ArbiterError):
    status = 413
    code = "TOO_LARGE"


class Unprocessable(ArbiterError):
    status = 422
    code = "INVALID"
