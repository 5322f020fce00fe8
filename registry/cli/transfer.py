"""``arbiter push`` and ``arbiter pull``: stream generic files with progress and digests.

Files are never read whole: pushes hash the file first (so the server can
refuse a corrupted upload) and then stream it in 1 MiB chunks; pulls stream
into a temporary file beside the destination, check the sha256 the server
states, and only then rename it into place, so a failed pull leaves nothing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated

import httpx
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from registry.cli.client import (
    TRANSFER_TIMEOUT,
    CliError,
    connect,
    err,
    friendly,
    out,
    segment,
    server_error,
)

CHUNK = 1024 * 1024
CHECKSUM_HEADER = "X-Checksum-Sha256"
PUSH_HINTS = {
    400: "the upload was refused as sent; the message above says why",
    403: "you may not push here: ask for the writer role on this repository",
}
PULL_HINTS = {
    404: "check REPO/PACKAGE/VERSION/FILE; 'GET /generic/REPO/PACKAGE' lists versions",
    403: "you may not pull this: ask for the reader role on the repository",
}


def _split(value: str, shape: str) -> list[str]:
    """Split ``value`` into the segments ``shape`` names, each non-empty."""
    parts = value.split("/")
    if len(parts) != shape.count("/") + 1 or not all(parts):
        raise typer.BadParameter(f"{value!r} is not {shape}")
    return parts


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
    )


def _sha256(path: Path, progress: Progress) -> str:
    task = progress.add_task("checksum", total=path.stat().st_size)
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            progress.advance(task, len(chunk))
    return digest.hexdigest()


def _chunks(path: Path, progress: Progress, task: TaskID) -> Iterator[bytes]:
    """The body of a push: 1 MiB at a time, advancing the bar as httpx sends it."""
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk
            progress.advance(task, len(chunk))


def _upload(url: str, path: Path, media_type: str) -> httpx.Response:
    size = path.stat().st_size
    with _progress() as progress:
        digest = _sha256(path, progress)
        task = progress.add_task(f"push {path.name}", total=size)
        headers = {
            CHECKSUM_HEADER: digest,
            "Content-Length": str(size),
            "Content-Type": media_type,
        }
        with connect(TRANSFER_TIMEOUT) as client:
            try:
                response = client.put(url, content=_chunks(path, progress, task), headers=headers)
            except (httpx.WriteError, httpx.RemoteProtocolError) as error:
                raise CliError(
                    f"the server closed the connection during the upload ({error})",
                    "the upload was probably refused (credentials, role or size limit); "
                    "check 'arbiter whoami' and the server log",
                ) from None
    if response.is_error:
        raise server_error(response, PUSH_HINTS)
    return response


@friendly
def push(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, metavar="FILE", help="The file to upload."
        ),
    ],
    target: Annotated[str, typer.Argument(metavar="REPO/PACKAGE/VERSION")],
    name: Annotated[
        str | None, typer.Option(help="File name in the registry (default: FILE's name).")
    ] = None,
    media_type: Annotated[str, typer.Option(help="Content-Type to record.")] = (
        "application/octet-stream"
    ),
) -> None:
    """Upload FILE to a generic repository, verified by its sha256."""
    repo, package, version = _split(target, "REPO/PACKAGE/VERSION")
    filename = name or file.name
    url = "/generic/" + "/".join(segment(s) for s in (repo, package, version, filename))
    body = _upload(url, file, media_type).json()
    out.print(
        f"pushed {repo}/{package}/{version}/{filename} sha256:{body['sha256']} "
        f"({body['size']} bytes)",
        soft_wrap=True,
        markup=False,
    )


def _destination(output: Path | None, filename: str) -> Path:
    destination = output if output is not None else Path(filename)
    if destination.is_dir():
        destination = destination / filename
    if not destination.parent.is_dir():
        raise CliError(f"directory {destination.parent} does not exist", exit_code=2)
    return destination


def _umask_mode() -> int:
    """The mode a plain ``open()`` would give, since temporary files are created 0600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _receive(response: httpx.Response, destination: Path, expected: str) -> int:
    """Stream into a temp file beside ``destination``, verify, rename; return the size."""
    total = int(response.headers.get("content-length", "0")) or None
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed before the rename
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".part", delete=False
    )
    temp = Path(handle.name)
    try:
        with handle, _progress() as progress:
            task = progress.add_task(f"pull {destination.name}", total=total)
            actual, size = _write(response, handle, progress, task)
            os.fsync(handle.fileno())
        _verify(expected, actual, size, total)
        temp.chmod(_umask_mode())
        os.replace(temp, destination)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(destination.parent)
    return size


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable, not only the file's bytes."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(
    response: httpx.Response, target: IO[bytes], progress: Progress, task: TaskID
) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in response.iter_bytes(CHUNK):
        target.write(chunk)
        digest.update(chunk)
        size += len(chunk)
        progress.advance(task, len(chunk))
    return digest.hexdigest(), size


def _verify(expected: str, actual: str, size: int, total: int | None) -> None:
    if total is not None and size != total:
        raise CliError(
            f"the download ended after {size} of {total} bytes; nothing was written",
            "retry the pull",
        )
    if actual != expected:
        raise CliError(
            f"checksum mismatch: the server stated sha256:{expected} but sent sha256:{actual}; "
            "nothing was written",
            "retry; if it persists the stored file is damaged: tell an administrator",
        )


@friendly
def pull(
    source: Annotated[str, typer.Argument(metavar="REPO/PACKAGE/VERSION/FILE")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File or directory to write (default: ./FILE)."),
    ] = None,
) -> None:
    """Download a generic file, verify its sha256 and move it into place atomically."""
    parts = _split(source, "REPO/PACKAGE/VERSION/FILE")
    destination = _destination(output, parts[-1])
    url = "/generic/" + "/".join(segment(s) for s in parts)
    with connect(TRANSFER_TIMEOUT) as client, client.stream("GET", url) as response:
        if response.is_error:
            response.read()
            raise server_error(response, PULL_HINTS)
        expected = response.headers.get(CHECKSUM_HEADER, "").strip().lower()
        if not expected:
            raise CliError(
                f"the server sent no {CHECKSUM_HEADER} header, so the file cannot be verified",
                "is ARBITER_URL pointing at an Arbiter server?",
            )
        size = _receive(response, destination, expected)
    out.print(
        f"pulled {source} to {destination} sha256:{expected} ({size} bytes)",
        soft_wrap=True,
        markup=False,
    )
