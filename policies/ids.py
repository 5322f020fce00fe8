"""Identifiers that must be unique, not secret: decision and request ids.

``uuid.uuid4()`` reads the kernel's random source on every call, a system call
on the hottest path that also gives up the GIL (and, under load, waits to get it
back). A decision or request id only has to be unique, so a per-process
Mersenne Twister seeded from the kernel once, and again in every forked child,
gives version-4 UUIDs without either.
"""

from __future__ import annotations

import os
import random
import uuid

_VERSION_4 = 0x4000 << 64  # version nibble 4, the variant bits set below
_CLEAR = ~(0xF000 << 64) & ~(0xC000 << 48)
_VARIANT = 0x8000 << 48

_random = random.Random()


def _reseed() -> None:
    _random.seed(os.urandom(32))


def random_uuid() -> uuid.UUID:
    """A version-4 UUID from the process's seeded generator."""
    return uuid.UUID(int=(_random.getrandbits(128) & _CLEAR) | _VERSION_4 | _VARIANT)


_reseed()
os.register_at_fork(after_in_child=_reseed)
