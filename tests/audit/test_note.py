"""C2SP signed notes and Ed25519 keys, against Go's golang.org/x/mod/sumdb/note vectors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from audit.errors import SignatureError, SigningKeyError
from audit.note import NoteSigner, NoteVerifier, load_or_create_signing_key, open_note

# From golang.org/x/mod/sumdb/note (note.go example and note_test.go).
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIGNATURE = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
GO_NOTE = GO_TEXT + "\n\u2014 PeterNeumann " + GO_SIGNATURE + "\n"


def test_signing_reproduces_go_note_byte_for_byte() -> None:
    signer = NoteSigner.from_text(GO_SIGNER)
    assert signer.sign(GO_TEXT) == GO_NOTE
    assert signer.public_key_text() == GO_VERIFIER
    assert signer.text() == GO_SIGNER


def test_go_note_opens_with_go_verifier() -> None:
    assert open_note(GO_NOTE, NoteVerifier.from_text(GO_VERIFIER)) == GO_TEXT


def test_edited_text_fails() -> None:
    with pytest.raises(SignatureError, match="does not verify"):
        open_note(
            GO_NOTE.replace("cryptography", "cryptographY"), NoteVerifier.from_text(GO_VERIFIER)
        )


def test_other_key_is_refused_naming_who_signed() -> None:
    forger = NoteSigner.generate("PeterNeumann")  # same name, other key
    note = forger.sign(GO_TEXT)
    with pytest.raises(SignatureError, match="not signed by key PeterNeumann"):
        open_note(note, NoteVerifier.from_text(GO_VERIFIER))


def test_cosigned_note_opens_with_either_key() -> None:
    a, b = NoteSigner.generate("a.example"), NoteSigner.generate("b.example")
    note = a.sign(GO_TEXT)
    cosigned = note + b.sign(GO_TEXT).split("\n\n", 1)[1]
    assert open_note(cosigned, a.verifier()) == GO_TEXT
    assert open_note(cosigned, b.verifier()) == GO_TEXT


@pytest.mark.parametrize(
    "note",
    [
        GO_TEXT,  # no signatures
        GO_TEXT + "\n\u2014 PeterNeumann\n",
        GO_TEXT + "\n- PeterNeumann x08go/ZJku\n",
        GO_TEXT + "\n\u2014 PeterNeumann !!!notbase64\n",
        GO_TEXT + "\n\u2014 PeterNeumann AAAA\n",
        GO_NOTE[:-1],  # no final newline
    ],
)
def test_malformed_notes_raise(note: str) -> None:
    with pytest.raises(SignatureError):
        open_note(note, NoteVerifier.from_text(GO_VERIFIER))


@pytest.mark.parametrize(
    "key",
    [
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+Anpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2Qc",
    ],
)
def test_malformed_verifier_keys_raise(key: str) -> None:
    with pytest.raises(SigningKeyError):
        NoteVerifier.from_text(key)


def test_signing_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "keys" / "audit.key"
        created = load_or_create_signing_key(path, "registry.example/audit")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_signing_key(path)
    assert again.public_key_text() == created.public_key_text()
    assert created.public_key_text().startswith("registry.example/audit+")
    with pytest.raises(SigningKeyError, match="configuration says"):
        load_or_create_signing_key(path, "other/name")


def test_world_readable_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    load_or_create_signing_key(path)
    path.chmod(0o644)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        load_or_create_signing_key(path)


def test_garbage_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    path.write_text("not a key\n")
    path.chmod(0o600)
    with pytest.raises(SigningKeyError):
        load_or_create_signing_key(path)
