"""The distribution spec's error codes in one table, and their rendering.

Every error an OCI client sees is ``{"errors": [{"code", "message", "detail"}]}``
with the status the table names. Registry-wide errors (a policy denial, an
unknown repository, a bad digest from the blob store) are translated here, so
the routes raise whatever is natural and this module alone knows the wire form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse

from registry.blobs import BlobNotFound, BlobTooLarge, DigestMismatch, InvalidDigest
from registry.blobs import UploadRangeInvalid as StoreRangeInvalid
from registry.errors import (
    ArbiterError,
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PolicyDenied,
    Unauthorized,
    WrongFormat,
)

# code -> (HTTP status, the spec's description)
CODES: Mapping[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown to registry"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
}


class OciError(ArbiterError):
    """An error with a spec code; ``status`` defaults to the table's."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        detail: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if code not in CODES:
            raise ValueError(f"{code} is not a distribution spec error code")
        super().__init__(message)
        self.code = code
        self.status = status or CODES[code][0]
        self.detail = detail
        self.headers = dict(headers or {})


def blob_unknown(digest: str) -> OciError:
    return OciError(
        "BLOB_UNKNOWN", f"blob {digest} is not in this image", detail={"digest": digest}
    )


def manifest_unknown(reference: str) -> OciError:
    return OciError(
        "MANIFEST_UNKNOWN",
        f"manifest {reference} is not in this image",
        detail={"reference": reference},
    )


def upload_unknown(session: str) -> OciError:
    return OciError(
        "BLOB_UPLOAD_UNKNOWN",
        f"upload {session} is unknown, finished or cancelled; start a new upload with POST",
    )


def to_oci(error: ArbiterError) -> OciError:
    """The spec's view of any registry error."""
    if isinstance(error, OciError):
        return error
    if isinstance(error, PolicyDenied):
        return OciError("DENIED", error.message, detail={"reasons": list(error.reasons)})
    if isinstance(error, Unauthorized):
        return OciError("UNAUTHORIZED", error.message)
    if isinstance(error, Forbidden):
        return OciError("DENIED", error.message)
    if isinstance(error, InvalidDigest | DigestMismatch):
        return OciError("DIGEST_INVALID", error.message)
    if isinstance(error, StoreRangeInvalid):
        return OciError(
            "BLOB_UPLOAD_INVALID",
            error.message,
            status=416,
            headers={"Range": upload_range(error.size)},
        )
    if isinstance(error, BlobTooLarge | PayloadTooLarge):
        return OciError("SIZE_INVALID", error.message, status=413)
    if isinstance(error, BlobNotFound):
        return OciError("BLOB_UNKNOWN", error.message)
    if isinstance(error, NotFound | WrongFormat):  # to OCI, another format's repository is none
        return OciError("NAME_UNKNOWN", error.message)
    if isinstance(error, BadRequest):
        return OciError("BLOB_UPLOAD_INVALID", error.message)
    return OciError("UNSUPPORTED", error.message, status=error.status)


def upload_range(size: int) -> str:
    """The ``Range`` header of an upload holding ``size`` bytes (inclusive end, as the spec)."""
    return f"0-{max(size - 1, 0)}"


def render(error: OciError, extra_headers: Mapping[str, str] | None = None) -> JSONResponse:
    entry: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.detail is not None:
        entry["detail"] = error.detail
    headers = {**error.headers, **(extra_headers or {})}
    headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    return JSONResponse({"errors": [entry]}, status_code=error.status, headers=headers)
