"""A bare Starlette app for ``bench_server_choice``: the blob store and nothing else.

``PUT /blob`` stages the body through :class:`~registry.blobs.FilesystemBlobStore`
(hash + write + fsync) and commits it; ``GET /blob/{digest}`` answers with a
``FileResponse``, which is zero-copy when the server offers ASGI ``pathsend``.
No auth, no database, no policy: only the server differs between runs.
The store's root comes from ``ARBITER_BENCH_BARE_ROOT``.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from registry.blobs import BlobError, FilesystemBlobStore

ROOT_ENV = "ARBITER_BENCH_BARE_ROOT"
store = FilesystemBlobStore(Path(os.environ.get(ROOT_ENV, "var/bench-bare")))


async def put_blob(request: Request) -> Response:
    try:
        staged = await store.stage(
            request.stream(), expected_sha256=request.headers.get("x-checksum-sha256")
        )
    except BlobError as error:
        return JSONResponse({"error": error.message}, status_code=error.status)
    ref = store.commit(staged)
    return JSONResponse({"digest": ref.digest, "size": ref.size}, status_code=201)


async def get_blob(request: Request) -> Response:
    try:
        return FileResponse(store.path_of(request.path_params["digest"]))
    except BlobError as error:
        return JSONResponse({"error": error.message}, status_code=error.status)


async def delete_blob(request: Request) -> Response:
    store.delete(request.path_params["digest"])
    return Response(status_code=204)


async def pathsend(request: Request) -> Response:
    """Whether this server offers ``http.response.pathsend`` (reported by the bench)."""
    offered = "http.response.pathsend" in request.scope.get("extensions", {})
    return JSONResponse({"pathsend": offered})


app = Starlette(
    routes=[
        Route("/blob", put_blob, methods=["PUT"]),
        Route("/blob/{digest}", get_blob, methods=["GET"]),
        Route("/blob/{digest}", delete_blob, methods=["DELETE"]),
        Route("/pathsend", pathsend, methods=["GET"]),
    ]
)
