"""RFC 9162 hashing and proofs against published vectors and a naive reimplementation."""

from __future__ import annotations

import hashlib

import pytest

from audit.errors import EventNotFoundError, ProofError
from audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemorySubtrees,
    consistency_proof,
    decompose,
    inclusion_proof,
    leaf_hash,
    range_proof,
    root_of,
    tree_root,
    verify_consistency,
    verify_inclusion,
    verify_range,
)

# Certificate Transparency / RFC 6962 reference inputs and roots for 1..8 leaves.
CT_INPUTS = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657"]
CT_INPUTS.append("606162636465666768696a6b6c6d6e6f")
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


# -- an independent, deliberately naive transcription of RFC 9162 section 2.1 --


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(d: list[bytes]) -> bytes:
    if not d:
        return _h(b"")
    if len(d) == 1:
        return _h(b"\x00" + d[0])
    k = _k(len(d))
    return _h(b"\x01" + naive_mth(d[:k]) + naive_mth(d[k:]))


def naive_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) <= 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*naive_path(m, d[:k]), naive_mth(d[k:])]
    return [*naive_path(m - k, d[k:]), naive_mth(d[:k])]


def naive_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [naive_mth(d)]
    k = _k(n)
    if m <= k:
        return [*naive_subproof(m, d[:k], b), naive_mth(d[k:])]
    return [*naive_subproof(m - k, d[k:], False), naive_mth(d[:k])]


DATA = [f"leaf-{i}".encode() for i in range(41)]
LEAVES = [leaf_hash(x) for x in DATA]
SOURCE = MemorySubtrees(LEAVES)


def test_roots_match_rfc6962_vectors() -> None:
    leaves = [leaf_hash(bytes.fromhex(x)) for x in CT_INPUTS]
    assert root_of([]) == EMPTY_ROOT == _h(b"")
    for n in range(1, 9):
        assert root_of(leaves[:n]).hex() == CT_ROOTS[n - 1]
        assert tree_root(MemorySubtrees(leaves), n).hex() == CT_ROOTS[n - 1]


@pytest.mark.parametrize("n", range(1, 42))
def test_root_and_proofs_match_naive_rfc(n: int) -> None:
    root = naive_mth(DATA[:n])
    assert tree_root(SOURCE, n) == root == root_of(LEAVES[:n])
    for m in range(n):
        proof = inclusion_proof(SOURCE, m, n)
        assert proof == naive_path(m, DATA[:n])
        verify_inclusion(LEAVES[m], m, n, proof, root)
    for m in range(1, n + 1):
        proof = consistency_proof(SOURCE, m, n)
        assert proof == ([] if m == n else naive_subproof(m, DATA[:n], True))
        verify_consistency(m, n, naive_mth(DATA[:m]), root, proof)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 16, 33])
def test_inclusion_tampering_fails(n: int) -> None:
    root = tree_root(SOURCE, n)
    for m in range(n):
        proof = inclusion_proof(SOURCE, m, n)
        with pytest.raises(ProofError):
            verify_inclusion(leaf_hash(b"forged"), m, n, proof, root)
        if n > 1:
            with pytest.raises(ProofError):
                verify_inclusion(LEAVES[m], (m + 1) % n, n, proof, root)
            with pytest.raises(ProofError):
                verify_inclusion(LEAVES[m], m, n, proof[:-1], root)
            with pytest.raises(ProofError):
                verify_inclusion(LEAVES[m], m, n, [*proof, LEAVES[0]], root)
            bad = [bytes(32), *proof[1:]]
            with pytest.raises(ProofError):
                verify_inclusion(LEAVES[m], m, n, bad, root)
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[0], n, n, [], root)


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13, 24])
def test_consistency_rewrites_fail(n: int) -> None:
    new_root = tree_root(SOURCE, n)
    for m in range(1, n):
        proof = consistency_proof(SOURCE, m, n)
        rewritten = [*DATA[: m - 1], b"rewritten"]
        with pytest.raises(ProofError):
            verify_consistency(m, n, naive_mth(rewritten), new_root, proof)
        with pytest.raises(ProofError):
            verify_consistency(m, n, naive_mth(DATA[:m]), naive_mth([*DATA[: n - 1], b"x"]), proof)
        if proof:
            with pytest.raises(ProofError):
                verify_consistency(m, n, naive_mth(DATA[:m]), new_root, proof[:-1])
    with pytest.raises(ProofError):
        verify_consistency(n, n, new_root, naive_mth(DATA[: n - 1]), [])
    with pytest.raises(ProofError):
        verify_consistency(n, n - 1, new_root, new_root, [])


def test_proof_requests_outside_the_tree_raise() -> None:
    with pytest.raises(EventNotFoundError):
        inclusion_proof(SOURCE, 5, 5)
    with pytest.raises(EventNotFoundError):
        consistency_proof(SOURCE, 6, 5)
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[0][:31], 0, 1, [], LEAVES[0])


def test_decompose_covers_the_range_with_aligned_maximal_subtrees() -> None:
    for start in range(0, 40):
        for end in range(start, 41):
            covered = start
            for level, index in decompose(start, end):
                assert index << level == covered
                covered += 1 << level
            assert covered == end


@pytest.mark.parametrize("size", [1, 2, 5, 8, 13, 32, 41])
def test_range_proofs_verify_and_detect_changes(size: int) -> None:
    root = tree_root(SOURCE, size)
    for start in range(size):
        for end in range(start + 1, size + 1):
            left, right = range_proof(SOURCE, start, end, size)
            compact = CompactRange(start, left)
            for leaf in LEAVES[start:end]:
                compact.append(leaf)
            verify_range(compact, size, right, root)
    left, right = range_proof(SOURCE, 1, 3, size if size >= 3 else 3)
    if size >= 3:
        compact = CompactRange(1, left)
        compact.append(LEAVES[1])
        compact.append(leaf_hash(b"swapped"))
        with pytest.raises(ProofError):
            verify_range(compact, size, right, root)


def test_range_proof_rejects_missing_leaves_and_wrong_shapes() -> None:
    size, root = 20, tree_root(SOURCE, 20)
    left, right = range_proof(SOURCE, 4, 12, size)
    compact = CompactRange(4, left)
    for leaf in LEAVES[4:11]:  # one leaf short
        compact.append(leaf)
    with pytest.raises(ProofError):
        verify_range(compact, size, right, root)
    with pytest.raises(ProofError):
        CompactRange(5, left)  # 4 and 5 need different left shapes
    compact = CompactRange(4, left)
    for leaf in LEAVES[4:12]:
        compact.append(leaf)
    with pytest.raises(ProofError):
        verify_range(compact, size, right[:-1], root)
