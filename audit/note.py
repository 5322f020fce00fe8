"""C2SP signed notes with Ed25519 keys (https://c2sp.org/signed-note).

A note is UTF-8 text ending in a newline, a blank line, then one line per
signature: ``— <key name> <base64(key hash || signature)>``. The key hash is
the first 4 bytes of ``SHA-256(name || "\\n" || 0x01 || public key)``; 0x01
names Ed25519. Keys use the text forms of Go's ``golang.org/x/mod/sumdb/note``:

* verifier key: ``<name>+<hex key hash>+<base64(0x01 || public key)>``
  (what ``GET /api/v1/audit/public-key`` serves and auditors pin);
* signer key: ``PRIVATE+KEY+<name>+<hex key hash>+<base64(0x01 || seed)>``
  (what :func:`load_or_create_signing_key` stores, mode 0600).

So notes and keys interoperate with Go tooling (``note.Open``, Tessera, the
``sumdb`` verifiers).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit.errors import SignatureError, SigningKeyError

ALG_ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
MAX_SIGNATURES = 100
_PRIVATE_PREFIX = "PRIVATE+KEY+"
#: Name of a key created without one; deployments should name theirs after the
#: log's origin (e.g. ``registry.example.com/audit``).
DEFAULT_KEY_NAME = "arbiter/audit"


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SigningKeyError(f"{what} is not valid base64") from exc


def check_key_name(name: str) -> str:
    """Key names are non-empty, contain no whitespace and no ``+``."""
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise SigningKeyError(f"invalid key name {name!r}: use no spaces and no '+'")
    return name


def key_hash(name: str, public_key: bytes) -> bytes:
    """The 4-byte key hash that prefixes every signature by this key."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class NoteVerifier:
    """An Ed25519 note verifier key: checks signatures by one named key."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    @classmethod
    def from_text(cls, text: str) -> NoteVerifier:
        """Parse ``<name>+<hex hash>+<base64(0x01 || key)>``."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise SigningKeyError("a verifier key looks like <name>+<hex hash>+<base64 key>")
        name, hash_hex, blob = parts
        check_key_name(name)
        raw = _b64decode(blob, "verifier key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise SigningKeyError("verifier key is not an Ed25519 (type 0x01) key")
        if hash_hex.lower() != key_hash(name, raw[1:]).hex():
            raise SigningKeyError("verifier key hash does not match its name and key")
        return cls(name, bytes.fromhex(hash_hex), Ed25519PublicKey.from_public_bytes(raw[1:]))

    def text(self) -> str:
        """The verifier key in its text form."""
        blob = base64.b64encode(bytes([ALG_ED25519]) + _raw_public(self.public_key)).decode()
        return f"{self.name}+{self.key_id.hex()}+{blob}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's signature over ``message``."""
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class NoteSigner:
    """An Ed25519 note signer key."""

    name: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """A fresh random key named ``name``."""
        return cls(check_key_name(name), Ed25519PrivateKey.generate())

    @classmethod
    def from_text(cls, text: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+<name>+<hex hash>+<base64(0x01 || seed)>``."""
        text = text.strip()
        if not text.startswith(_PRIVATE_PREFIX):
            raise SigningKeyError("a signer key starts with PRIVATE+KEY+")
        parts = text[len(_PRIVATE_PREFIX) :].split("+", 2)
        if len(parts) != 3:
            raise SigningKeyError("a signer key looks like PRIVATE+KEY+<name>+<hash>+<key>")
        name, hash_hex, blob = parts
        raw = _b64decode(blob, "signer key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise SigningKeyError("signer key is not an Ed25519 (type 0x01) key")
        signer = cls(check_key_name(name), Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if hash_hex.lower() != signer.key_id.hex():
            raise SigningKeyError("signer key hash does not match its name and key")
        return signer

    @property
    def key_id(self) -> bytes:
        return key_hash(self.name, _raw_public(self.private_key.public_key()))

    def text(self) -> str:
        """The signer key in its text form (secret: store with mode 0600)."""
        seed = self.private_key.private_bytes_raw()
        blob = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id.hex()}+{blob}"

    def verifier(self) -> NoteVerifier:
        """The matching verifier."""
        return NoteVerifier(self.name, self.key_id, self.private_key.public_key())

    def public_key_text(self) -> str:
        """The verifier key text to publish (``GET /api/v1/audit/public-key``)."""
        return self.verifier().text()

    def sign(self, text: str) -> str:
        """Return the signed note: ``text``, a blank line, and our signature line."""
        _check_note_text(text)
        signature = self.private_key.sign(text.encode())
        blob = base64.b64encode(self.key_id + signature).decode()
        return f"{text}\n{SIGNATURE_PREFIX}{self.name} {blob}\n"


def public_key_text(signer: NoteSigner) -> str:
    """The verifier key text for ``signer`` (see :meth:`NoteSigner.public_key_text`)."""
    return signer.public_key_text()


def _check_note_text(text: str) -> None:
    if not text.endswith("\n") or "\n\n" in text:
        raise SignatureError("note text must end in a newline and contain no blank line")


def _signature_lines(note: str) -> tuple[str, list[str]]:
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise SignatureError("malformed note: no blank line before the signatures")
    text, lines = note[: split + 1], note[split + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise SignatureError(f"note carries more than {MAX_SIGNATURES} signatures")
    return text, lines


def open_note(note: str, verifier: NoteVerifier) -> str:
    """Check ``note`` carries a valid signature by ``verifier``; return its text.

    Signatures by other keys are ignored (notes may be cosigned). Raises
    :class:`SignatureError` when no signature is by this key, when one is
    malformed, or when a signature claiming this key does not verify.
    """
    text, lines = _signature_lines(note)
    others: list[str] = []
    for line in lines:
        name, blob = _parse_signature_line(line)
        if name != verifier.name:
            others.append(name)
            continue
        raw = base64.b64decode(blob)
        if raw[:4] != verifier.key_id:
            others.append(f"{name}+{raw[:4].hex()}")
            continue
        if not verifier.verify(text.encode(), raw[4:]):
            raise SignatureError(f"signature by key {verifier.name} does not verify")
        return text
    seen = ", ".join(others) or "none"
    raise SignatureError(
        f"note is not signed by key {verifier.name}+{verifier.key_id.hex()} (signed by: {seen})"
    )


def _parse_signature_line(line: str) -> tuple[str, str]:
    if not line.startswith(SIGNATURE_PREFIX):
        raise SignatureError("malformed note: signature line does not start with an em dash")
    fields = line[len(SIGNATURE_PREFIX) :].split(" ")
    if len(fields) != 2 or not fields[0]:
        raise SignatureError("malformed note: signature line is not '— name signature'")
    try:
        raw = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("malformed note: signature is not base64") from None
    if len(raw) < 5:
        raise SignatureError("malformed note: signature too short")
    return fields[0], fields[1]


def load_or_create_signing_key(path: str | os.PathLike[str], name: str | None = None) -> NoteSigner:
    """Load the signer key at ``path``, or generate one there with mode 0600.

    ``name`` names a new key (default :data:`DEFAULT_KEY_NAME`) and, when given,
    must match an existing key, so a configuration change cannot silently
    switch the log to another identity. A key file that group or others can
    read is refused rather than used.
    """
    file = Path(path)
    if not file.exists():
        try:
            return _create_key_file(file, name or DEFAULT_KEY_NAME)
        except FileExistsError:
            pass  # another instance created it first: use theirs
    mode = stat.S_IMODE(file.stat().st_mode)
    if mode & 0o077:
        raise SigningKeyError(f"{file} is readable by others (mode {mode:o}): chmod 600 it")
    signer = NoteSigner.from_text(file.read_text())
    if name is not None and signer.name != name:
        raise SigningKeyError(f"{file} holds key {signer.name!r}, configuration says {name!r}")
    return signer


def _create_key_file(file: Path, name: str) -> NoteSigner:
    signer = NoteSigner.generate(name)
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask said
        os.write(fd, (signer.text() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return signer
