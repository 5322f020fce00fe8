"""Bounded reading of package archives: zip (wheels) and gzip-compressed tar (sdists, npm).

Inspection answers two questions about an uploaded archive -- is it sound,
and what do its metadata files say -- without ever trusting what it declares:

1. every member name is a relative path that stays inside the archive
   (no absolute path, drive, backslash, NUL or ``..``), and no name repeats;
2. the number of members, each member's unpacked size and their total stay
   within :class:`~registry.packages.limits.ArchiveLimits`;
3. zip members neither overlap (the trick of non-recursive zip bombs) nor
   expand beyond the ratio limit; encrypted members are refused;
4. only the few metadata files asked for are decompressed, each bounded by
   ``max_metadata_size``; a gzip stream is cut off once it has produced more
   than the members may hold.

Zip archives are read through their central directory (random access on the
staged file); tar archives in one streaming pass, so neither is ever held in
memory. Every failure is a :class:`~registry.packages.errors.PackageInvalid`
naming the member and the limit.
"""

from __future__ import annotations

import gzip
import itertools
import posixpath
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import BinaryIO

from registry.packages.errors import PackageInvalid
from registry.packages.limits import ArchiveLimits

READ_CHUNK = 256 * 1024
# Bytes a tar stream may hold beyond its members' contents: 512-byte headers
# (pax and GNU long-name records too) and padding of every member, and the end.
TAR_OVERHEAD_PER_MEMBER = 3 * 512
TAR_OVERHEAD = 1024 * 1024
_ZIP_LOCAL_HEADER = 30
_ZIP_ENCRYPTED = 0x1


def safe_member_name(name: str, *, what: str = "archive") -> str:
    """``name`` as a normalised relative POSIX path; refuses every escaping form."""
    if not name or "\x00" in name:
        raise PackageInvalid(f"the {what} has a member with an empty name or a NUL byte")
    if "\\" in name:
        raise PackageInvalid(f"the {what} member {name!r} contains a backslash")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise PackageInvalid(f"the {what} member {name!r} has an absolute path")
    if any(ord(char) < 0x20 for char in name):
        raise PackageInvalid(f"the {what} member {name!r} contains control characters")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PackageInvalid(f"the {what} member {name!r} contains '..'")
    if not parts:
        raise PackageInvalid(f"the {what} member {name!r} names no file")
    return "/".join(parts)


def _check_size(name: str, size: int, limits: ArchiveLimits, what: str) -> None:
    if size > limits.max_member_size:
        raise PackageInvalid(
            f"the {what} member {name!r} unpacks to {size} bytes, over the limit of "
            f"{limits.max_member_size} (ARBITER_PACKAGE_MAX_MEMBER_SIZE)"
        )


def _check_total(total: int, limits: ArchiveLimits, what: str) -> None:
    if total > limits.max_unpacked_size:
        raise PackageInvalid(
            f"the {what} unpacks to more than {limits.max_unpacked_size} bytes "
            "(ARBITER_PACKAGE_MAX_UNPACKED_SIZE)"
        )


def _check_count(count: int, limits: ArchiveLimits, what: str) -> None:
    if count > limits.max_members:
        raise PackageInvalid(
            f"the {what} has more than {limits.max_members} members (ARBITER_PACKAGE_MAX_MEMBERS)"
        )


def _read_bounded(stream: BinaryIO, limit: int, name: str, what: str) -> bytes:
    """All of ``stream``, refusing more than ``limit`` bytes."""
    pieces: list[bytes] = []
    size = 0
    while chunk := stream.read(min(READ_CHUNK, limit + 1 - size)):
        size += len(chunk)
        if size > limit:
            raise PackageInvalid(
                f"the {what} member {name!r} is larger than {limit} bytes "
                "(ARBITER_PACKAGE_MAX_METADATA_SIZE)"
            )
        pieces.append(chunk)
    return b"".join(pieces)


class ZipArchive:
    """A zip file checked member by member on open; metadata read on demand.

    Use as a context manager over a seekable binary file (the staged upload).
    """

    def __init__(self, file: BinaryIO, limits: ArchiveLimits, *, what: str = "zip archive"):
        self.what = what
        self.limits = limits
        self._check_entry_count(file)
        try:
            self._zip = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as error:
            raise PackageInvalid(f"the {what} is not a valid zip file: {error}") from None
        try:
            self._infos = self._checked_infos()
        except BaseException:
            self._zip.close()
            raise

    @property
    def names(self) -> list[str]:
        """Normalised names of every file member (directories left out)."""
        return [name for name, info in self._infos.items() if not info.is_dir()]

    def read(self, name: str) -> bytes:
        """Decompress one member (a metadata file), bounded by ``max_metadata_size``."""
        info = self._infos.get(name)
        if info is None:
            raise PackageInvalid(f"the {self.what} has no {name}")
        if info.file_size > self.limits.max_metadata_size:
            raise PackageInvalid(
                f"{name} in the {self.what} is {info.file_size} bytes, over the limit of "
                f"{self.limits.max_metadata_size} (ARBITER_PACKAGE_MAX_METADATA_SIZE)"
            )
        try:
            with self._zip.open(info) as stream:
                return _read_bounded(stream, self.limits.max_metadata_size, name, self.what)  # type: ignore[arg-type]
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as error:
            raise PackageInvalid(f"{name} in the {self.what} is corrupt: {error}") from None

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> ZipArchive:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_entry_count(self, file: BinaryIO) -> None:
        """Refuse a huge central directory before :mod:`zipfile` builds an object per entry."""
        end_record = getattr(zipfile, "_EndRecData", None)
        if end_record is None:
            return
        try:
            record = end_record(file)
        except (OSError, ValueError, zipfile.BadZipFile):
            record = None
        finally:
            file.seek(0)
        if record is None:
            raise PackageInvalid(f"the {self.what} is not a valid zip file: no end of directory")
        _check_count(int(record[zipfile._ECD_ENTRIES_TOTAL]), self.limits, self.what)  # type: ignore[attr-defined]

    def _checked_infos(self) -> dict[str, zipfile.ZipInfo]:
        infos: dict[str, zipfile.ZipInfo] = {}
        total = 0
        entries = self._zip.infolist()
        _check_count(len(entries), self.limits, self.what)
        for info in entries:
            name = safe_member_name(info.filename, what=self.what)
            if info.is_dir():
                name += "/"
            if name in infos:
                raise PackageInvalid(f"the {self.what} holds {name!r} twice")
            if info.flag_bits & _ZIP_ENCRYPTED:
                raise PackageInvalid(f"the {self.what} member {name!r} is encrypted")
            _check_size(name, info.file_size, self.limits, self.what)
            self._check_ratio(name, info)
            total += info.file_size
            _check_total(total, self.limits, self.what)
            infos[name] = info
        self._check_overlaps(entries)
        return infos

    def _check_ratio(self, name: str, info: zipfile.ZipInfo) -> None:
        if info.file_size <= self.limits.ratio_floor:
            return
        if info.file_size > self.limits.max_ratio * max(info.compress_size, 1):
            raise PackageInvalid(
                f"the {self.what} member {name!r} expands {info.file_size} bytes out of "
                f"{info.compress_size}, beyond the ratio limit of {self.limits.max_ratio} "
                "(a zip bomb?)"
            )

    def _check_overlaps(self, entries: list[zipfile.ZipInfo]) -> None:
        """Members must not share bytes: overlapping entries are how zip bombs multiply."""
        ordered = sorted(entries, key=lambda info: info.header_offset)
        for current, following in itertools.pairwise(ordered):
            # A lower bound of the member's end: the local header's extra field is unknown.
            end = (
                current.header_offset
                + _ZIP_LOCAL_HEADER
                + len(current.orig_filename)
                + current.compress_size
            )
            if following.header_offset < end:
                raise PackageInvalid(
                    f"the {self.what} members {current.filename!r} and "
                    f"{following.filename!r} overlap (a zip bomb?)"
                )


class _BoundedReader:
    """A read-only stream that refuses to deliver more than ``limit`` bytes."""

    def __init__(self, inner: BinaryIO | gzip.GzipFile, limit: int, what: str) -> None:
        self._inner = inner
        self._limit = limit
        self._what = what
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.count += len(data)
        if self.count > self._limit:
            raise PackageInvalid(
                f"the {self._what} unpacks to more than {self._limit} bytes "
                "(ARBITER_PACKAGE_MAX_UNPACKED_SIZE)"
            )
        return data


@dataclass
class TarContents:
    """What one pass over a tar archive found: every member name, and the wanted files."""

    names: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def top_levels(self) -> set[str]:
        """The first path segments of all members."""
        return {name.split("/", 1)[0] for name in self.names}


class TarArchive:
    """One streaming pass over a gzip-compressed tar archive."""

    @staticmethod
    def scan(
        file: BinaryIO,
        limits: ArchiveLimits,
        want: Callable[[str], bool],
        *,
        what: str = "tar archive",
    ) -> TarContents:
        """Check every member and read those ``want`` selects (bounded); nothing is extracted."""
        cap = limits.max_unpacked_size + TAR_OVERHEAD
        contents = TarContents()
        try:
            with gzip.GzipFile(fileobj=file, mode="rb") as unzipped:
                bounded = _BoundedReader(unzipped, cap, what)
                with tarfile.open(fileobj=bounded, mode="r|") as tar:  # type: ignore[call-overload]
                    _scan_members(_members(tar), tar, limits, want, what, contents)
        except PackageInvalid:
            raise
        except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error, OSError) as error:
            raise PackageInvalid(
                f"the {what} is not a valid gzip-compressed tar archive: {error or 'truncated'}"
            ) from None
        return contents


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while (member := tar.next()) is not None:
        yield member


def _scan_members(
    members: Iterator[tarfile.TarInfo],
    tar: tarfile.TarFile,
    limits: ArchiveLimits,
    want: Callable[[str], bool],
    what: str,
    contents: TarContents,
) -> None:
    seen: set[str] = set()
    total = 0
    for count, member in enumerate(members, start=1):
        _check_count(count, limits, what)
        name = safe_member_name(member.name, what=what)
        if name in seen:
            raise PackageInvalid(f"the {what} holds {name!r} twice")
        seen.add(name)
        _check_kind(member, name, what)
        if member.isdir():
            continue
        _check_size(name, member.size, limits, what)
        total += member.size
        _check_total(total, limits, what)
        contents.names.append(name)
        if member.isfile() and want(name):
            stream = tar.extractfile(member)
            if stream is None:  # pragma: no cover - regular files always have a stream
                continue
            contents.files[name] = _read_bounded(stream, limits.max_metadata_size, name, what)  # type: ignore[arg-type]
    if not contents.names:
        raise PackageInvalid(f"the {what} holds no files")


def _check_kind(member: tarfile.TarInfo, name: str, what: str) -> None:
    """Files, directories and links that stay inside the archive; nothing else."""
    if member.isfile() or member.isdir():
        return
    if member.issym():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
        if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise PackageInvalid(
                f"the {what} member {name!r} links outside the archive ({member.linkname!r})"
            )
        return
    if member.islnk():
        safe_member_name(member.linkname, what=what)
        return
    raise PackageInvalid(f"the {what} member {name!r} is a device, FIFO or other special file")
