"""Wheels and sdists written by hand, the way build backends write them.

The tests need packages with chosen names, versions, licenses and defects
(a wrong METADATA, a ``..`` member, a zip bomb), and no network to fetch a
build backend, so the archives are written here with :mod:`zipfile` and
:mod:`tarfile`: a wheel with ``METADATA``, ``WHEEL`` and a correct ``RECORD``,
an sdist with ``PKG-INFO`` and ``pyproject.toml`` under ``{name}-{version}/``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path


def escape(name: str) -> str:
    """The wheel/sdist file name form of a project name."""
    return name.replace("-", "_").replace(".", "_")


def core_metadata(
    name: str,
    version: str,
    *,
    summary: str = "A test package",
    license_expression: str | None = None,
    requires: Sequence[str] = (),
    requires_python: str | None = ">=3.8",
    metadata_version: str = "2.4",
    extra: str = "",
) -> str:
    lines = [
        f"Metadata-Version: {metadata_version}",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {summary}",
    ]
    if license_expression:
        lines.append(f"License-Expression: {license_expression}")
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires]
    return "\n".join(lines) + "\n" + extra + "\nThe long description of " + name + ".\n"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel(
    directory: Path,
    name: str,
    version: str,
    *,
    metadata: str | None = None,
    files: Mapping[str, bytes] | None = None,
    dist_info: str | None = None,
    filename: str | None = None,
    **metadata_args: object,
) -> Path:
    """Write ``{name}-{version}-py3-none-any.whl`` (importable module ``{escape(name)}``)."""
    module = escape(name).lower()
    dist_info = dist_info or f"{escape(name)}-{version}.dist-info"
    content: dict[str, bytes] = {
        f"{module}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        **(files or {}),
    }
    meta = metadata if metadata is not None else core_metadata(name, version, **metadata_args)  # type: ignore[arg-type]
    content[f"{dist_info}/METADATA"] = meta.encode()
    content[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: arbiter-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [_record_line(path, data) for path, data in content.items()]
    record.append(f"{dist_info}/RECORD,,")
    content[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / (filename or f"{escape(name)}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in content.items():
            archive.writestr(member, data)
    return path


def sdist(
    directory: Path,
    name: str,
    version: str,
    *,
    metadata: str | None = None,
    members: Mapping[str, bytes] | None = None,
    top: str | None = None,
    **metadata_args: object,
) -> Path:
    """Write ``{name}-{version}.tar.gz`` with PKG-INFO and a pyproject.toml."""
    top = top or f"{escape(name)}-{version}"
    meta = metadata if metadata is not None else core_metadata(name, version, **metadata_args)  # type: ignore[arg-type]
    pyproject = f'[project]\nname = "{name}"\nversion = "{version}"\n'.encode()
    content = {
        f"{top}/PKG-INFO": meta.encode(),
        f"{top}/pyproject.toml": pyproject,
        f"{top}/{escape(name).lower()}/__init__.py": b"",
        **(members or {}),
    }
    path = directory / f"{escape(name)}-{version}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for member, data in content.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return path
