"""Render :class:`ArbiterError` as ``{"error": {"code", "message"}}`` with its status.

Formats with an error shape of their own (OCI, npm, PyPI) render errors in
their routers; this is the default for the management API and generic files.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from registry.errors import ArbiterError, PolicyDenied, Unauthorized

REALM = 'Basic realm="arbiter", charset="UTF-8"'


def error_response(error: ArbiterError) -> JSONResponse:
    status, code = error.status, error.code
    headers: dict[str, str] = {}
    if isinstance(error, Unauthorized) or (isinstance(error, PolicyDenied) and error.anonymous):
        # An anonymous subject denied by policy is asked to authenticate.
        status, code = 401, "UNAUTHORIZED"
        headers["WWW-Authenticate"] = REALM
    detail: dict[str, Any] = {"code": code, "message": error.message}
    if isinstance(error, PolicyDenied):
        detail["reasons"] = list(error.reasons)
    body = {"error": detail}
    return JSONResponse(body, status_code=status, headers=headers)


async def _arbiter_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ArbiterError)
    return error_response(error)


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    fields = ", ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in error.errors())
    body = {"error": {"code": "INVALID", "message": f"invalid request: {fields}"}}
    return JSONResponse(body, status_code=422)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ArbiterError, _arbiter_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
