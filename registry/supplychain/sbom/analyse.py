"""Analyse one artifact file: walk it, hash its files, catalog the packages inside.

The procedure, each step raising :class:`~registry.supplychain.errors.ScanFailed`
with a reason when the content is hostile, broken or too big:

1. sniff the container from the first bytes (zip, tar, gzip/bzip2/xz) and
   hold the file name to its word: a ``.tar.gz`` that is not gzip, a ``.whl``
   or ``.jar`` that is not a zip, fails;
2. stream the entries (:mod:`registry.supplychain.sbom.walk`), hashing every
   regular file (SHA-1, SHA-256) and handing metadata files to the catalogers;
3. spool nested JARs and wheels into a private temporary directory (removed
   afterwards) and walk them too, up to ``max_depth``;
4. let the catalogers turn what they collected into packages, then link the
   dependency graph.

A file that is no archive is analysed as itself: its SBOM names the file and
its digest and lists no components.
"""

from __future__ import annotations

import hashlib
import posixpath
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

from registry.supplychain.errors import ScanFailed
from registry.supplychain.limits import ScanLimits
from registry.supplychain.sbom import walk
from registry.supplychain.sbom.budget import Budget
from registry.supplychain.sbom.catalogers import Cataloger, Context
from registry.supplychain.sbom.catalogers.apk import ApkPackages
from registry.supplychain.sbom.catalogers.dpkg import DpkgPackages
from registry.supplychain.sbom.catalogers.java import JAVA_ARCHIVES, JavaPackages
from registry.supplychain.sbom.catalogers.npm import NpmPackages
from registry.supplychain.sbom.catalogers.osrelease import OsRelease
from registry.supplychain.sbom.catalogers.python import PythonPackages
from registry.supplychain.sbom.inventory import SHA1, SHA256, FileEntry, Inventory

READ_CHUNK = 1024 * 1024
NESTED = (*JAVA_ARCHIVES, ".whl", ".egg")
_ZIP_NAMES = (*NESTED, ".zip")
_GZIP_NAMES = (".tar.gz", ".tgz")
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"

Entries = Iterator[tuple[walk.Entry, walk.Readable | None]]


def analyse_file(
    file: BinaryIO,
    *,
    filename: str,
    size: int,
    limits: ScanLimits,
    rootfs: bool = False,
) -> Inventory:
    """The inventory of ``file``; raises :class:`ScanFailed` when it cannot be analysed."""
    with tempfile.TemporaryDirectory(prefix="arbiter-scan-", dir=limits.temp_dir) as private:
        walker = _Walker(filename, limits, Budget(limits, size), Path(private), rootfs=rootfs)
        entries = walker.open(file)
        if entries is not None:
            walker.walk_entries(entries, archive="", depth=0)
        return walker.finish()


@dataclass(frozen=True)
class Layer:
    """One image layer: its bytes, its media type and digest (for messages)."""

    file: BinaryIO
    media_type: str
    digest: str
    size: int


def analyse_image(layers: Sequence[Layer], *, name: str, limits: ScanLimits) -> Inventory:
    """The inventory of an OCI image: layers applied in order, whiteouts honoured.

    Each layer is streamed once (never extracted); a later layer's file
    replaces an earlier one's, ``.wh.NAME`` removes NAME (and what is below
    it) and ``.wh..wh..opq`` empties its directory of what earlier layers put
    there. A layer declared gzip that is not, or in a compression we do not
    read, fails the scan.
    """
    total = sum(layer.size for layer in layers)
    with tempfile.TemporaryDirectory(prefix="arbiter-scan-", dir=limits.temp_dir) as private:
        walker = _Walker(name, limits, Budget(limits, total), Path(private), rootfs=True)
        walker.layered = True
        for index, layer in enumerate(layers):
            walker.layer = index
            walker.walk_entries(walker.open_layer(layer, index), archive="", depth=0)
        return walker.finish()


class _Walker:
    def __init__(
        self, filename: str, limits: ScanLimits, budget: Budget, private: Path, *, rootfs: bool
    ) -> None:
        self.filename = filename
        self.limits = limits
        self.budget = budget
        self.private = private
        self.rootfs = rootfs
        self.inventory = Inventory()
        self.java = JavaPackages()
        self.catalogers: list[Cataloger] = [
            OsRelease(),
            DpkgPackages(),
            ApkPackages(),
            PythonPackages(),
            NpmPackages(),
            self.java,
        ]
        self._spooled = 0
        # Last writer wins, per top-level path: a tar may hold a path twice, and a
        # later image layer replaces or whites out what earlier ones wrote.
        self._takes: dict[str, list[tuple[Cataloger, str, str, bytes]]] = {}
        self._files: dict[str, FileEntry] = {}
        self._layer_of: dict[str, int] = {}
        self.layer = 0
        self.layered = False
        self._top = ""

    def open(self, file: BinaryIO) -> Entries | None:
        """The entries of the artifact, or ``None`` when it is not an archive."""
        head = file.read(512)
        file.seek(0)
        container, compression = walk.sniff(head)
        name = self.filename.lower()
        if name.endswith(_GZIP_NAMES) and compression != "gzip":
            raise ScanFailed(f"{self.filename} is named as gzip-compressed but is not gzip")
        if name.endswith(_ZIP_NAMES) and container != walk.ZIP:
            raise ScanFailed(f"{self.filename} is named as a zip archive but is not one")
        if container == walk.ZIP:
            return self._zip(file, charge=True)
        if container == walk.TAR:
            return walk.iter_tar(file, self.budget, rootfs=self.rootfs)
        if (
            compression is not None
            and compression != "zstd"
            and walk.compressed_tar(file, compression)
        ):
            return walk.iter_tar(
                walk.decompressor(file, compression), self.budget, rootfs=self.rootfs
            )
        if name.endswith((".tar", *_GZIP_NAMES)):
            raise ScanFailed(f"{self.filename} is named as a tar archive but holds none")
        return None

    def open_layer(self, layer: Layer, index: int) -> Entries:
        head = layer.file.read(512)
        layer.file.seek(0)
        container, compression = walk.sniff(head)
        declared = layer.media_type.lower()
        what = f"layer {index} ({layer.digest})"
        if declared.endswith(("gzip", "+gzip")) and compression != "gzip":
            raise ScanFailed(f"{what} is declared {layer.media_type} but is not gzip")
        if declared.endswith("zstd") or compression == "zstd":
            raise ScanFailed(f"{what} is zstd-compressed, which analysis does not read yet")
        if compression is not None:
            return walk.iter_tar(
                walk.decompressor(layer.file, compression), self.budget, rootfs=True
            )
        if container != walk.TAR:
            raise ScanFailed(f"{what} is not a tar archive")
        return walk.iter_tar(layer.file, self.budget, rootfs=True)

    def _zip(self, file: BinaryIO, *, charge: bool) -> Entries:
        for entry, content in walk.iter_zip(file, self.budget):
            yield (
                entry,
                (_Charged(content, self.budget) if content is not None and charge else content),
            )

    def walk_entries(self, entries: Entries, *, archive: str, depth: int) -> None:
        for entry, content in entries:
            if not archive and self.layered and self._whiteout(entry):
                continue
            if entry.kind != walk.FILE:
                if not archive and self.layered:
                    self._forget(entry.path, below=False)  # a file replaced by a link or directory
                continue
            if not archive:
                self._top = entry.path
                self._takes.pop(entry.path, None)
                self._layer_of[entry.path] = self.layer
            if content is None:  # encrypted: listed without digests
                self._list(archive, entry.path, entry.size, {})
                continue
            self._file(entry, content, archive=archive, depth=depth)

    def _file(self, entry: walk.Entry, content: walk.Readable, *, archive: str, depth: int) -> None:
        wanted = [c for c in self.catalogers if c.wants(entry.path)]
        capture = bool(wanted) and entry.size <= self.limits.max_metadata_size
        nested = (
            entry.path.lower().endswith(NESTED)
            and depth < self.limits.max_depth
            and entry.size <= self.limits.max_nested_size
        )
        sha1, sha256 = hashlib.sha1(usedforsecurity=False), hashlib.sha256()
        captured = bytearray()
        spool = self._spool_file() if nested else None
        try:
            while chunk := content.read(READ_CHUNK):
                sha1.update(chunk)
                sha256.update(chunk)
                if capture:
                    captured += chunk
                    if len(captured) > self.limits.max_metadata_size:
                        capture, captured = False, bytearray()
                if spool is not None:
                    spool.write(chunk)
            hashes = {SHA1: sha1.hexdigest(), SHA256: sha256.hexdigest()}
            self._list(archive, entry.path, entry.size, hashes)
            if capture:
                data = bytes(captured)
                takes = self._takes.setdefault(self._top, [])
                takes.extend((cataloger, archive, entry.path, data) for cataloger in wanted)
            if spool is not None:
                spool.seek(0)
                inner = f"{archive}!/{entry.path}" if archive else entry.path
                self.java.archive(inner, hashes)
                if walk.sniff(spool.read(8))[0] == walk.ZIP:
                    spool.seek(0)
                    self.walk_entries(
                        self._zip(cast(BinaryIO, spool), charge=True),
                        archive=inner,
                        depth=depth + 1,
                    )
        finally:
            if spool is not None:
                spool.close()

    def _spool_file(self) -> IO[bytes]:
        self._spooled += 1
        return (self.private / f"nested-{self._spooled}").open("w+b")

    def _list(self, archive: str, path: str, size: int, hashes: dict[str, str]) -> None:
        if archive:
            return  # files of nested archives are covered by the archive's own digests
        if path in self._files or len(self._files) < self.limits.max_file_components:
            self._files[path] = FileEntry(path=path, size=size, hashes=hashes)
        else:
            self.inventory.files_omitted += 1

    def _whiteout(self, entry: walk.Entry) -> bool:
        """Apply an OCI whiteout (``.wh.NAME``, ``.wh..wh..opq``); True when ``entry`` is one."""
        directory, _, name = entry.path.rpartition("/")
        if not name.startswith(WHITEOUT):
            return False
        if name == OPAQUE:
            prefix = f"{directory}/" if directory else ""
            for path in [p for p in self._layer_of if p.startswith(prefix)]:
                if self._layer_of[path] < self.layer:
                    self._forget(path, below=False)
        else:
            hidden = name[len(WHITEOUT) :]
            self._forget(f"{directory}/{hidden}" if directory else hidden, below=True)
        return True

    def _forget(self, path: str, *, below: bool) -> None:
        """Drop what earlier writes of ``path`` (and, ``below``, of paths under it) left."""
        doomed = [path]
        if below:
            doomed += [p for p in self._layer_of if p.startswith(path + "/")]
        for gone in doomed:
            self._files.pop(gone, None)
            self._takes.pop(gone, None)
            self._layer_of.pop(gone, None)

    def finish(self) -> Inventory:
        context = Context(filename=posixpath.basename(self.filename))
        for top in sorted(self._takes):
            for cataloger, archive, path, data in self._takes[top]:
                cataloger.take(archive, path, data)
        self.inventory.files = list(self._files.values())
        for cataloger in self.catalogers:
            cataloger.finish(self.inventory, context)
        inventory = self.inventory
        if inventory.root is not None:
            inventory.packages.pop(inventory.root.purl, None)
        inventory.link()
        return inventory


class _Charged:
    """A zip entry's stream that charges the budget for what it decompresses."""

    def __init__(self, stream: walk.Readable, budget: Budget) -> None:
        self._stream = stream
        self._budget = budget

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._budget.unpack(len(data))
        self._budget.tick()
        return data
