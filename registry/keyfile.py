"""Secret keys kept in the data directory: created once, race-free, mode 0600.

Used for the MACs the registry both issues and verifies (OCI registry tokens,
links to a denial's reasons); instances that share a data directory share the
key.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_BYTES = 32


def load_key(path: Path) -> bytes:
    """Read the signing key, creating it (race-free across workers) when missing."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(secrets.token_bytes(KEY_BYTES))
        file.flush()
        os.fsync(file.fileno())
    try:
        os.link(draft, path)  # atomic and refuses to replace: the first worker's key wins
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_bytes()
