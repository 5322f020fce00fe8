"""Hostile archives end in scan.status = "failed" with a reason, never a crash or a stray file."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from registry.supplychain import scan
from registry.supplychain.limits import ScanLimits
from tests.registry.supplychain.builders import tar, wheel


def _run(data: bytes, filename: str, limits: ScanLimits) -> scan.Result:
    target = scan.Target(
        "files", "generic", "thing", "1", filename, "sha256:" + "0" * 64, len(data)
    )
    return scan.run(io.BytesIO(data), target, limits=limits, db=None)


def _failed(data: bytes, filename: str, limits: ScanLimits, *words: str) -> str:
    result = _run(data, filename, limits)
    assert result.status == "failed", result
    assert result.reason is not None
    for word in words:
        assert word in result.reason, result.reason
    assert result.document is None
    assert result.facts()["scan"] == {"status": "failed", "reason": result.reason, "components": 0}
    assert os.listdir(limits.temp_dir or "") == [], "the private temporary directory is left behind"
    return result.reason


def test_zip_bomb_is_refused_by_ratio(limits: ScanLimits) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\0" * (64 * 1024 * 1024))
    assert len(buffer.getvalue()) < 200_000
    _failed(buffer.getvalue(), "bomb.zip", limits, "zeros.bin", "zip bomb")


def test_gzip_bomb_is_stopped_while_decompressing(limits: ScanLimits) -> None:
    data = tar({"zeros.bin": b"\0" * (48 * 1024 * 1024)})
    _failed(data, "bomb.tar.gz", limits, "compression bomb")


def test_overlapping_zip_entries_are_refused(limits: ScanLimits) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", b"a" * 1000)
        archive.writestr("b.txt", b"b" * 1000)
    data = bytearray(buffer.getvalue())
    # Point b.txt's central-directory entry at a.txt's local header: shared data.
    central = data.rfind(b"PK\x01\x02")
    data[central + 42 : central + 46] = (0).to_bytes(4, "little")
    reason = _failed(bytes(data), "overlap.zip", limits)
    assert "overlap" in reason or "zip" in reason


@pytest.mark.parametrize(
    ("name", "kind", "target", "words"),
    [
        ("evil", tarfile.SYMTYPE, "../../../etc/passwd", ("symbolic link", "outside")),
        ("abs", tarfile.SYMTYPE, "/etc/shadow", ("symbolic link", "outside")),
        ("hard", tarfile.LNKTYPE, "../../etc/passwd", ("hard link", "outside")),
        ("dev/sda", tarfile.BLKTYPE, "", ("device",)),
        ("dev/tty", tarfile.CHRTYPE, "", ("device",)),
        ("pipe", tarfile.FIFOTYPE, "", ("FIFO",)),
    ],
)
def test_links_and_special_files(
    limits: ScanLimits, name: str, kind: bytes, target: str, words: tuple[str, ...]
) -> None:
    data = tar({"ok.txt": b"fine"}, links={name: (kind, target)})
    _failed(data, "links.tar.gz", limits, *words)


def test_links_inside_the_archive_are_fine(limits: ScanLimits) -> None:
    data = tar(
        {"bin/tool": b"#!/bin/sh\n"},
        links={
            "usr/bin/tool": (tarfile.SYMTYPE, "../../bin/tool"),
            "t": (tarfile.LNKTYPE, "bin/tool"),
        },
    )
    assert _run(data, "ok.tar.gz", limits).status == "complete"


@pytest.mark.parametrize(
    ("member", "words"),
    [("/etc/passwd", ("absolute",)), ("../../escape.txt", ("climbs out",))],
)
def test_escaping_member_names(limits: ScanLimits, member: str, words: tuple[str, ...]) -> None:
    _failed(tar({member: b"x"}), "names.tar.gz", limits, *words)


def test_a_layer_that_is_not_gzip(limits: ScanLimits) -> None:
    plain = tar({"a.txt": b"a"}, mode="w")
    _failed(plain, "layer.tar.gz", limits, "not gzip")
    _failed(b"\x00" * 2048, "random.tgz", limits, "not gzip")


def test_truncated_gzip(limits: ScanLimits) -> None:
    data = tar({f"f{i}.bin": os.urandom(20_000) for i in range(20)})
    _failed(data[: len(data) // 2], "cut.tar.gz", limits, "corrupt")


def test_not_a_zip_although_named_one(limits: ScanLimits) -> None:
    _failed(b"hello", "demo-1.0-py3-none-any.whl", limits, "not one")


def test_member_and_time_bounds(tmp_path: Path) -> None:
    scratch = tmp_path / "t"
    scratch.mkdir()
    many = tar({f"f{i}": b"" for i in range(50)})
    _failed(many, "many.tar.gz", ScanLimits(max_members=10, temp_dir=scratch), "MAX_MEMBERS")
    _failed(wheel(), "w.whl", ScanLimits(max_seconds=1e-9, temp_dir=scratch), "MAX_SECONDS")
    big = tar({"big.bin": b"x" * 4096})
    _failed(big, "big.tar.gz", ScanLimits(max_member_size=1024, temp_dir=scratch), "MAX_MEMBER")


def test_a_pax_header_claiming_gigabytes_does_not_fill_memory(limits: ScanLimits) -> None:
    header = tarfile.TarInfo("huge")
    header.type = tarfile.XHDTYPE
    header.size = 3 * 1024 * 1024 * 1024
    raw = header.tobuf(format=tarfile.USTAR_FORMAT) + b"0" * (9 * 1024 * 1024)
    _failed(gzip.compress(raw), "pax.tar.gz", limits)


def test_nested_archive_is_spooled_inside_the_private_directory(limits: ScanLimits) -> None:
    inner = wheel("inner", "2.0")
    data = tar({"wheels/inner-2.0-py3-none-any.whl": inner})
    result = _run(data, "bundle.tar.gz", limits)
    assert result.status == "complete"
    assert "pkg:pypi/inner@2.0" in result.summary.purls
    assert os.listdir(limits.temp_dir or "") == []


def test_plain_files_are_their_own_sbom(limits: ScanLimits) -> None:
    result = _run(b"just some bytes", "notes.txt", limits)
    assert result.status == "complete"
    assert result.summary.components == 0
    assert result.document is not None
