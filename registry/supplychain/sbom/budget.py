"""The running account of one analysis against its :class:`~registry.supplychain.limits.ScanLimits`.

Every reader charges the budget as it goes (members, unpacked bytes, time),
so a bound is noticed while the bytes are produced, not after they were
held. Exhausting it raises :class:`~registry.supplychain.errors.ScanFailed`
naming the bound and the variable that raises it.
"""

from __future__ import annotations

import time

from registry.supplychain.errors import ScanFailed
from registry.supplychain.limits import ScanLimits


class Budget:
    """Members, unpacked bytes and time spent so far, against the limits."""

    def __init__(self, limits: ScanLimits, packed_size: int) -> None:
        self.limits = limits
        self.packed_size = max(packed_size, 1)
        self.deadline = time.monotonic() + limits.max_seconds
        self.members = 0
        self.unpacked = 0

    def member(self, name: str, size: int) -> None:
        """Charge one archive entry of ``size`` declared bytes."""
        self.members += 1
        if self.members > self.limits.max_members:
            raise ScanFailed(
                f"the archive has more than {self.limits.max_members} entries "
                "(ARBITER_SCAN_MAX_MEMBERS)"
            )
        if size > self.limits.max_member_size:
            raise ScanFailed(
                f"entry {name!r} declares {size} bytes, over the limit of "
                f"{self.limits.max_member_size} (ARBITER_SCAN_MAX_MEMBER_SIZE)"
            )
        self.tick()

    def unpack(self, count: int) -> None:
        """Charge ``count`` decompressed bytes; checks the total and the ratio."""
        self.unpacked += count
        if self.unpacked > self.limits.max_unpacked_size:
            raise ScanFailed(
                f"the archive unpacks to more than {self.limits.max_unpacked_size} bytes "
                "(ARBITER_SCAN_MAX_UNPACKED_SIZE)"
            )
        if (
            self.unpacked > self.limits.ratio_floor
            and self.unpacked > self.limits.max_ratio * self.packed_size
        ):
            raise ScanFailed(
                f"the archive expands more than {self.limits.max_ratio} times its "
                f"{self.packed_size} bytes (a compression bomb; ARBITER_SCAN_MAX_RATIO)"
            )

    def tick(self) -> None:
        """Raise once the analysis has run out of time."""
        if time.monotonic() > self.deadline:
            raise ScanFailed(
                f"analysis took longer than {self.limits.max_seconds:g} s "
                "(ARBITER_SCAN_MAX_SECONDS)"
            )
