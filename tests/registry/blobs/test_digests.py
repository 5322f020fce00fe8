"""Digest strings: strict, because they come from URLs and name files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from registry.blobs import (
    FilesystemBlobStore,
    InvalidDigest,
    expected_digest,
    format_digest,
    parse_digest,
)

HEX = "ab" * 32
INVALID = [
    "",
    "sha256:",
    HEX,
    "sha256:" + HEX[:-1],
    "sha256:" + HEX + "0",
    "sha256:" + HEX.upper(),
    "SHA256:" + HEX,
    "sha512:" + HEX * 2,
    "md5:" + HEX[:32],
    "sha256:" + "g" * 64,
    "sha256:" + HEX + "\n",
    " sha256:" + HEX,
    "sha256:../../../../etc/passwd" + "0" * 36,
    "sha256:" + HEX[:62] + "/.",
    None,
    42,
    b"sha256:" + HEX.encode(),
]


def test_valid_digest_round_trips() -> None:
    assert parse_digest("sha256:" + HEX) == HEX
    assert format_digest(HEX) == "sha256:" + HEX


@pytest.mark.parametrize("value", INVALID)
def test_invalid_digest_is_refused(value: object) -> None:
    with pytest.raises(InvalidDigest) as caught:
        parse_digest(value)
    assert caught.value.status == 400
    assert "sha256:" in caught.value.message, "the message says what a digest looks like"


@pytest.mark.parametrize("value", [v for v in INVALID if isinstance(v, str)])
def test_store_refuses_invalid_digests(tmp_path: Path, value: str) -> None:
    store = FilesystemBlobStore(tmp_path)
    for call in (store.exists, store.size, store.path_of, store.delete):
        with pytest.raises(InvalidDigest):
            call(value)


def test_expected_digest_spellings() -> None:
    assert expected_digest(None) is None
    assert expected_digest(HEX) == "sha256:" + HEX
    assert expected_digest(HEX.upper()) == "sha256:" + HEX
    assert expected_digest("sha256:" + HEX) == "sha256:" + HEX
    for bad in ("sha256:" + HEX.upper(), HEX[:-1], "sha1:" + HEX, HEX + " "):
        with pytest.raises(InvalidDigest):
            expected_digest(bad)


def test_invalid_stated_digest_is_refused_before_reading(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    read = False

    async def body() -> AsyncIterator[bytes]:
        nonlocal read
        read = True
        yield b"x"

    with pytest.raises(InvalidDigest):
        asyncio.run(store.stage(body(), expected_sha256="not-a-digest"))
    assert not read
    assert list((tmp_path / "staging").iterdir()) == []
