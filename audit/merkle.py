"""RFC 9162 Merkle tree hashing, proofs and their verification. Pure functions.

Leaves are event hashes: the leaf input is the 32 raw bytes of an event's
``hash``, so ``leaf = SHA-256(0x00 || bytes.fromhex(event.hash))`` and
``node = SHA-256(0x01 || left || right)``. Leaf index ``i`` holds seq ``i + 1``.

Proof generation reads subtree hashes through a :class:`SubtreeSource`, so the
same algorithms run over an in-memory list (:class:`MemorySubtrees`) or over the
database with its node cache (:mod:`audit.tree`). A proof needs O(log n)
subtree hashes; no proof recomputes the whole tree.

Verifiers raise :class:`audit.errors.ProofError` and return nothing: there is no
``False`` to forget to check.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

from audit.errors import EventNotFoundError, ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash of ``data``."""
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash."""
    return hashlib.sha256(_NODE + left + right).digest()


def event_leaf(event_hash_hex: str) -> bytes:
    """The leaf hash of an event, from its hex ``hash``."""
    return leaf_hash(bytes.fromhex(event_hash_hex))


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def leaf_hashes(data: Iterable[bytes]) -> list[bytes]:
    """RFC 9162 leaf hashes of ``data``, in order."""
    sha256 = hashlib.sha256
    return [sha256(_LEAF + item).digest() for item in data]


def parent_level(nodes: Sequence[bytes]) -> list[bytes]:
    """The nodes one level up from ``nodes`` (pairs 0+1, 2+3, ...; an odd last one
    has no parent yet). One list pass: what folding a few thousand leaves costs."""
    sha256 = hashlib.sha256
    return [
        sha256(_NODE + left + right).digest()
        for left, right in zip(nodes[::2], nodes[1::2], strict=False)
    ]


def fold_perfect(hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree from its 2**k bottom nodes, left to right."""
    level = list(hashes)
    if not level or len(level) & (len(level) - 1):
        raise ValueError("fold_perfect needs a power-of-two number of hashes")
    while len(level) > 1:
        level = parent_level(level)
    return level[0]


def perfect_subtrees(start: int, leaves: Sequence[bytes]) -> list[tuple[int, int, bytes]]:
    """``(level, index, hash)`` of the maximal aligned perfect subtrees over leaf
    hashes ``leaves`` at indexes ``[start, start + len(leaves))`` (the shape of
    :func:`decompose`), left to right."""
    out: list[tuple[int, int, bytes]] = []
    offset = 0
    for level, index in decompose(start, start + len(leaves)):
        width = 1 << level
        out.append((level, index, fold_perfect(leaves[offset : offset + width])))
        offset += width
    return out


def decompose(start: int, end: int) -> list[tuple[int, int]]:
    """Split leaves ``[start, end)`` into maximal aligned perfect subtrees.

    Returns ``(level, index)`` pairs left to right; the subtree covers leaves
    ``[index << level, (index + 1) << level)``.
    """
    out: list[tuple[int, int]] = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length()
        while start + (1 << level) > end:
            level -= 1
        out.append((level, start >> level))
        start += 1 << level
    return out


class SubtreeSource(Protocol):
    """Where proof generation reads hashes of perfect subtrees."""

    def perfect(self, level: int, index: int) -> bytes:
        """Hash of the subtree over leaves ``[index << level, (index + 1) << level)``."""
        ...


class MemorySubtrees:
    """A :class:`SubtreeSource` over leaf hashes held in memory (tests, small logs)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self._levels: list[list[bytes]] = [list(leaves)]
        while len(self._levels[-1]) > 1:
            self._levels.append(parent_level(self._levels[-1]))

    def perfect(self, level: int, index: int) -> bytes:
        try:
            return self._levels[level][index]
        except IndexError:
            raise EventNotFoundError(
                f"no complete subtree at level {level} index {index}"
            ) from None


def range_hash(source: SubtreeSource, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for ranges produced by RFC 9162's recursive split."""
    n = end - start
    if n <= 0:
        raise ValueError("empty range")
    if n & (n - 1) == 0 and start % n == 0:
        return source.perfect(n.bit_length() - 1, start // n)
    k = split_point(n)
    return node_hash(range_hash(source, start, start + k), range_hash(source, start + k, end))


def tree_root(source: SubtreeSource, size: int) -> bytes:
    """Root hash of the first ``size`` leaves (``EMPTY_ROOT`` for size 0)."""
    return EMPTY_ROOT if size == 0 else range_hash(source, 0, size)


def inclusion_proof(source: SubtreeSource, index: int, size: int) -> list[bytes]:
    """RFC 9162 section 2.1.3.1 PATH(index, D[0:size]), leaf to root."""
    if not 0 <= index < size:
        raise EventNotFoundError(f"leaf {index} is not in a tree of size {size}")
    siblings: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            siblings.append((lo + k, hi))
            hi = lo + k
        else:
            siblings.append((lo, lo + k))
            lo += k
    return [range_hash(source, a, b) for a, b in reversed(siblings)]


def consistency_proof(source: SubtreeSource, old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 section 2.1.4.1 PROOF(old_size, D[0:new_size])."""
    if not 0 <= old_size <= new_size:
        raise EventNotFoundError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    tail: list[tuple[int, int]] = []
    head: list[bytes] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                head.append(range_hash(source, lo, hi))
            break
        k = split_point(n)
        if m <= k:
            tail.append((lo + k, hi))
            hi = lo + k
        else:
            tail.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    return head + [range_hash(source, a, b) for a, b in reversed(tail)]


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 section 2.1.3.2; ``leaf`` is the leaf *hash*. Raises ProofError."""
    for item in (leaf, root, *proof):
        _check_hash(item, "a hash in the inclusion proof")
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    if r != root:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 section 2.1.4.2. Raises ProofError unless new extends old."""
    for item in (old_root, new_root, *proof):
        _check_hash(item, "a hash in the consistency proof")
    if not 0 <= old_size <= new_size:
        raise ProofError(f"tree size went from {old_size} down to {new_size}")
    if old_size == new_size or old_size == 0:
        if proof:
            raise ProofError("consistency proof must be empty for these sizes")
        if old_size == new_size and old_root != new_root:
            raise ProofError(f"two different roots for the same tree size {old_size}")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError(f"consistency proof does not reproduce the size {old_size} root")
    if sr != new_root:
        raise ProofError(f"consistency proof does not reproduce the size {new_size} root")


class CompactRange:
    """Streaming Merkle hashing in O(log n) memory.

    Holds the maximal perfect subtrees covering ``[0, size)``; appending a leaf
    merges equal-sized neighbours. Also used by the export verifier, seeded with
    the subtrees left of an exported range (``start`` > 0).
    """

    __slots__ = ("_levels", "_nodes", "size")

    def __init__(self, start: int = 0, left: Sequence[bytes] = ()) -> None:
        shape = decompose(0, start)
        if len(shape) != len(left):
            raise ProofError(
                f"range proof needs {len(shape)} hashes left of leaf {start}, got {len(left)}"
            )
        for item in left:
            _check_hash(item, "a left hash of the range proof")
        self._levels = [level for level, _ in shape]
        self._nodes = list(left)
        self.size = start

    def append(self, leaf: bytes) -> None:
        """Add the next leaf *hash*."""
        self.push(0, leaf)

    def push(self, level: int, node: bytes) -> None:
        """Add the next aligned perfect subtree of height ``level``."""
        self.size += 1 << level
        levels, nodes = self._levels, self._nodes
        while levels and levels[-1] == level:
            levels.pop()
            node = node_hash(nodes.pop(), node)
            level += 1
        levels.append(level)
        nodes.append(node)

    def nodes(self) -> list[bytes]:
        """The subtree hashes held, left to right (shape: ``decompose(0, size)``)."""
        return list(self._nodes)

    def root(self) -> bytes:
        """Root of the leaves added so far."""
        if not self._nodes:
            return EMPTY_ROOT
        result = self._nodes[-1]
        for node in reversed(self._nodes[:-1]):
            result = node_hash(node, result)
        return result


def range_proof(
    source: SubtreeSource, start: int, end: int, size: int
) -> tuple[list[bytes], list[bytes]]:
    """Hashes proving that leaves ``[start, end)`` belong to the tree of ``size``.

    ``left`` covers ``[0, start)`` and ``right`` covers ``[end, size)``, each as
    maximal perfect subtrees (see :func:`decompose`): at most ~2 log2(size)
    hashes for any number of leaves in the range.
    """
    if not 0 <= start <= end <= size:
        raise EventNotFoundError(f"leaves [{start}, {end}) are not in a tree of size {size}")
    left = [source.perfect(level, index) for level, index in decompose(0, start)]
    right = [source.perfect(level, index) for level, index in decompose(end, size)]
    return left, right


def verify_range(compact: CompactRange, size: int, right: Sequence[bytes], root: bytes) -> None:
    """Finish a range proof: ``compact`` holds the left hashes and the range's
    leaves; ``right`` covers the rest of the tree of ``size``. Raises ProofError."""
    _check_hash(root, "the root")
    shape = decompose(compact.size, size) if compact.size <= size else None
    if shape is None:
        raise ProofError(f"the range ends at leaf {compact.size}, past a tree of size {size}")
    if len(shape) != len(right):
        raise ProofError(f"range proof needs {len(shape)} right hashes, got {len(right)}")
    for (level, _), node in zip(shape, right, strict=True):
        _check_hash(node, "a right hash of the range proof")
        compact.push(level, node)
    if compact.root() != root:
        raise ProofError(f"the range's leaves and proof do not lead to the size {size} root")


def root_of(leaves: Iterable[bytes]) -> bytes:
    """Root over leaf hashes streamed in order (O(log n) memory)."""
    compact = CompactRange()
    for leaf in leaves:
        compact.append(leaf)
    return compact.root()
