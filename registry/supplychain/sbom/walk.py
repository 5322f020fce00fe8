"""Stream the entries of an archive without extracting it.

Nothing is written anywhere: a tar (plain, gzip, bzip2 or xz) is read in one
pass over a metered decompressor, a zip through its central directory. Each
entry comes out as an :class:`Entry` and, for regular files, a stream of its
bytes that is valid until the next entry. On the way:

1. every name is made relative and normalised; an absolute name, or one whose
   ``..`` climbs out of the archive, fails the scan;
2. a symbolic link whose target leaves the archive (``..`` beyond the root,
   or an absolute target unless the archive is a root file system), a hard
   link to a name outside it, and device files and FIFOs fail the scan;
3. the budget is charged per entry and per decompressed byte, and a tar
   stream may not read more than the current entry plus
   ``max_metadata_size`` of headers before the next entry, which bounds the
   memory Python's ``tarfile`` spends on pax and long-name headers;
4. zip entries may not overlap (non-recursive zip bombs) nor expand beyond
   the ratio; encrypted entries are listed without content.

Every failure is a :class:`~registry.supplychain.errors.ScanFailed` with the
entry's name in the reason.
"""

from __future__ import annotations

import bz2
import gzip
import io
import itertools
import lzma
import posixpath
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from registry.supplychain.errors import ScanFailed
from registry.supplychain.sbom.budget import Budget

FILE = "file"
DIRECTORY = "dir"
SYMLINK = "symlink"
HARDLINK = "hardlink"

TAR = "tar"
ZIP = "zip"
COMPRESSIONS = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
READ_CHUNK = 256 * 1024
_ZIP_LOCAL_HEADER = 30
_ZIP_ENCRYPTED = 0x1
_DECOMPRESSION_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError)


class Readable(Protocol):
    """Anything bytes can be read from in bounded pieces."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Entry:
    """One archive entry; ``link`` is the target of a symbolic or hard link."""

    path: str
    kind: str
    size: int
    link: str = ""
    encrypted: bool = False


def sniff(head: bytes) -> tuple[str | None, str | None]:
    """``(container, compression)`` from the first bytes: ``("tar", "gzip")``, ``("zip", None)``.

    A compressed stream that is not a tar is ``(None, compression)``: a
    compressed single file, listed as a file.
    """
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return ZIP, None
    for magic, compression in COMPRESSIONS.items():
        if head.startswith(magic):
            return None, compression
    if head.startswith(ZSTD_MAGIC):
        return None, "zstd"
    if is_tar_header(head):
        return TAR, None
    return None, None


def is_tar_header(block: bytes) -> bool:
    """A POSIX/GNU tar header (``ustar`` magic) at the start of ``block``."""
    return len(block) >= 263 and block[257:262] == b"ustar"


def decompressor(raw: BinaryIO, compression: str) -> Readable:
    """A bounded-read decompressing stream over ``raw``."""
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if compression == "bzip2":
        return bz2.BZ2File(raw, mode="rb")
    if compression == "xz":
        return lzma.LZMAFile(raw, mode="rb")
    raise ScanFailed(f"{compression} compression is not supported; use gzip, bzip2 or xz")


def compressed_tar(raw: BinaryIO, compression: str) -> bool:
    """Whether the compressed stream holds a tar (its first block has the ``ustar`` magic)."""
    start = raw.tell()
    try:
        head = decompressor(raw, compression).read(512)
    except _DECOMPRESSION_ERRORS:
        return False
    finally:
        raw.seek(start)
    return is_tar_header(head)


class Metered(io.RawIOBase):
    """The decompressed stream a tar is read from, charging the budget as it is read.

    ``allow(n)`` sets how many more bytes may be read before the walker sees
    the next entry; ``tarfile`` reading a header larger than that (a pax
    record claiming gigabytes) fails the scan instead of filling memory.
    """

    def __init__(self, stream: Readable, budget: Budget, header_allowance: int) -> None:
        super().__init__()
        self._stream = stream
        self._budget = budget
        self._header_allowance = header_allowance
        self._allowed = header_allowance

    def readable(self) -> bool:
        return True

    def allow(self, member_size: int) -> None:
        self._allowed = member_size + self._header_allowance

    def read(self, size: int = -1) -> bytes:
        want = READ_CHUNK if size is None or size < 0 else min(size, READ_CHUNK)
        if want > self._allowed:
            want = max(self._allowed, 0) + 1  # one byte past the allowance shows the overrun
        try:
            data = self._stream.read(want)
        except _DECOMPRESSION_ERRORS as error:
            raise ScanFailed(f"the compressed stream is corrupt or truncated: {error}") from None
        self._allowed -= len(data)
        if self._allowed < 0:
            raise ScanFailed(
                "a tar header or entry holds more bytes than it declares "
                "(ARBITER_SCAN_MAX_METADATA_SIZE bounds headers)"
            )
        self._budget.unpack(len(data))
        self._budget.tick()
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def entry_path(name: str) -> str:
    """``name`` as a relative POSIX path inside the archive; fails the scan when it escapes."""
    if "\x00" in name:
        raise ScanFailed(f"entry {name!r} has a NUL byte in its name")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        raise ScanFailed(f"entry {name!r} has an absolute path")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ScanFailed(f"entry {name!r} climbs out of the archive with '..'")
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def link_target(path: str, target: str, *, rootfs: bool) -> str:
    """Where a symbolic link at ``path`` points, inside the archive; fails when outside."""
    if target.startswith("/"):
        if not rootfs:
            raise ScanFailed(f"symbolic link {path!r} points outside the archive, to {target!r}")
        joined = target
    else:
        joined = posixpath.join(posixpath.dirname(path), target)
    depth = 0
    for part in joined.split("/"):
        if part in ("", "."):
            continue
        depth += -1 if part == ".." else 1
        if depth < 0 and not rootfs:
            raise ScanFailed(f"symbolic link {path!r} points outside the archive, to {target!r}")
    return posixpath.normpath(joined).lstrip("/")


def iter_tar(
    stream: Readable, budget: Budget, *, rootfs: bool = False
) -> Iterator[tuple[Entry, Readable | None]]:
    """Entries of a tar stream, in order, each file with its bytes (read before the next)."""
    metered = Metered(stream, budget, budget.limits.max_metadata_size)
    try:
        archive = tarfile.open(fileobj=metered, mode="r|")  # noqa: SIM115 - closed below
    except tarfile.TarError as error:
        raise ScanFailed(f"not a readable tar archive: {error}") from None
    try:
        while True:
            try:
                info = archive.next()
            except tarfile.TarError as error:
                raise ScanFailed(f"the tar archive is corrupt: {error}") from None
            archive.members.clear()  # type: ignore[attr-defined]  # a stream needs no index; 250k TarInfos would be a leak
            if info is None:
                return
            entry = _tar_entry(info, rootfs=rootfs)
            budget.member(entry.path, entry.size)
            metered.allow(info.size if entry.kind == FILE else 0)
            if entry.kind != FILE:
                yield entry, None
                continue
            try:
                content = archive.extractfile(info)
            except tarfile.TarError as error:
                raise ScanFailed(f"entry {info.name!r} cannot be read: {error}") from None
            yield entry, content
    finally:
        archive.close()


def _tar_entry(info: tarfile.TarInfo, *, rootfs: bool) -> Entry:
    path = entry_path(info.name)
    if info.isreg():
        return Entry(path, FILE, info.size)
    if info.isdir():
        return Entry(path, DIRECTORY, 0)
    if info.issym():
        return Entry(path, SYMLINK, 0, link_target(path, info.linkname, rootfs=rootfs))
    if info.islnk():
        try:
            target = entry_path(info.linkname)
        except ScanFailed:
            raise ScanFailed(
                f"hard link {info.name!r} points outside the archive, to {info.linkname!r}"
            ) from None
        return Entry(path, HARDLINK, 0, target)
    if info.ischr() or info.isblk():
        raise ScanFailed(f"entry {info.name!r} is a device file")
    if info.isfifo():
        raise ScanFailed(f"entry {info.name!r} is a FIFO")
    raise ScanFailed(f"entry {info.name!r} has an unknown type {info.type!r}")


def iter_zip(file: BinaryIO, budget: Budget) -> Iterator[tuple[Entry, Readable | None]]:
    """Entries of a zip (random access), each file with its bytes."""
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ScanFailed(f"not a readable zip archive: {error}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > budget.limits.max_members:
            budget.member("", 0)  # reports the count
            raise ScanFailed(f"the zip archive has {len(infos)} entries")
        _check_overlap(infos)
        for info in infos:
            entry = _zip_entry(archive, info, budget)
            budget.member(entry.path, entry.size)
            if entry.kind != FILE or entry.encrypted:
                yield entry, None
                continue
            try:
                with archive.open(info) as content:
                    yield entry, content
            except (zipfile.BadZipFile, *_DECOMPRESSION_ERRORS, NotImplementedError) as error:
                raise ScanFailed(f"zip entry {info.filename!r} cannot be read: {error}") from None


def _zip_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget) -> Entry:
    path = entry_path(info.filename)
    mode = info.external_attr >> 16
    if info.is_dir():
        return Entry(path, DIRECTORY, 0)
    limits = budget.limits
    if info.file_size > limits.ratio_floor and info.file_size > limits.max_ratio * max(
        info.compress_size, 1
    ):
        raise ScanFailed(
            f"zip entry {info.filename!r} expands {info.compress_size} bytes to "
            f"{info.file_size} (a zip bomb; ARBITER_SCAN_MAX_RATIO)"
        )
    if stat.S_ISLNK(mode):
        if info.file_size > 4096:
            raise ScanFailed(
                f"zip symbolic link {info.filename!r} has a {info.file_size}-byte target"
            )
        try:
            target = archive.read(info).decode("utf-8", "replace")
        except (zipfile.BadZipFile, *_DECOMPRESSION_ERRORS) as error:
            raise ScanFailed(f"zip entry {info.filename!r} cannot be read: {error}") from None
        return Entry(path, SYMLINK, 0, link_target(path, target, rootfs=False))
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        raise ScanFailed(f"zip entry {info.filename!r} is a device file or FIFO")
    return Entry(path, FILE, info.file_size, encrypted=bool(info.flag_bits & _ZIP_ENCRYPTED))


def _name_encoding(info: zipfile.ZipInfo) -> str:
    return "utf-8" if info.flag_bits & 0x800 else "cp437"


def _check_overlap(infos: list[zipfile.ZipInfo]) -> None:
    """Refuse entries whose compressed data overlaps the next entry's (shared-data zip bombs)."""
    ordered = sorted(infos, key=lambda info: info.header_offset)
    for current, following in itertools.pairwise(ordered):
        end = (
            current.header_offset
            + _ZIP_LOCAL_HEADER
            + len(current.orig_filename.encode(_name_encoding(current), "replace"))
            + current.compress_size
        )
        if end > following.header_offset:
            raise ScanFailed(
                f"zip entries {current.filename!r} and {following.filename!r} overlap (a zip bomb)"
            )
