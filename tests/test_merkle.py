"""crypto/merkle.py: proofs from stored hashes against the naive RFC 9162 recursion, strict
verification (every single-byte change rejected), and bad input raising typed errors."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import (
    CryptoError,
    InconsistentTreeError,
    InvalidProofError,
    LimitExceededError,
    MalformedError,
)
from crypto.merkle import (
    EMPTY_ROOT,
    MAX_TREE_SIZE,
    MemoryHashStore,
    NodeId,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    range_nodes,
    root_from_leaf_hashes,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

# -- the naive recursion of RFC 9162 2.1, as the oracle -----------------------------------


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(naive_mth(leaves[:k]), naive_mth(leaves[k:]))


def naive_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*naive_path(m, leaves[:k]), naive_mth(leaves[k:])]
    return [*naive_path(m - k, leaves[k:]), naive_mth(leaves[:k])]


def naive_subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [naive_mth(leaves)]
    k = _split(n)
    if m <= k:
        return [*naive_subproof(m, leaves[:k], whole), naive_mth(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), naive_mth(leaves[:k])]


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(b"leaf %d" % i) for i in range(n)]


class CountingStore(MemoryHashStore):
    """Records every batch read, to check proofs are built from O(log n) stored hashes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def read_hashes(self, nodes: Sequence[NodeId]) -> list[bytes]:
        self.calls.append(len(nodes))
        return super().read_hashes(nodes)


BIG = CountingStore()
BIG.append(_leaves(1000))
BIG_LEAVES = _leaves(1000)

# -- hashing ---------------------------------------------------------------------------------


def test_leaf_and_node_hash_domain_separation() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )
    assert EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_root_of_empty_tree() -> None:
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert tree_root(0, MemoryHashStore()) == EMPTY_ROOT


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=300))
def test_root_matches_naive(n: int) -> None:
    leaves = BIG_LEAVES[:n]
    expected = naive_mth(leaves)
    assert root_from_leaf_hashes(leaves) == expected
    assert tree_root(n, BIG) == expected


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=2**40), st.integers(min_value=0, max_value=2**40))
def test_range_nodes_cover_range_exactly(a: int, b: int) -> None:
    lo, hi = min(a, b), max(a, b)
    pos = lo
    for level, n in range_nodes(lo, hi):
        assert n << level == pos
        pos += 1 << level
    assert pos == hi
    assert len(range_nodes(lo, hi)) <= 2 * 64


# -- generation from stored hashes ----------------------------------------------------------


@settings(deadline=None)
@given(st.data())
def test_inclusion_proof_matches_naive_and_verifies(data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=1, max_value=1000))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    BIG.calls.clear()
    proof = inclusion_proof(index, size, BIG)
    assert BIG.calls == [BIG.calls[0]]  # one batched read
    assert BIG.calls[0] <= 2 * size.bit_length()  # O(log n) stored hashes
    assert proof == naive_path(index, BIG_LEAVES[:size])
    verify_inclusion(BIG_LEAVES[index], index, size, proof, naive_mth(BIG_LEAVES[:size]))


@settings(deadline=None)
@given(st.data())
def test_consistency_proof_matches_naive_and_verifies(data: st.DataObject) -> None:
    size2 = data.draw(st.integers(min_value=1, max_value=1000))
    size1 = data.draw(st.integers(min_value=1, max_value=size2))
    BIG.calls.clear()
    proof = consistency_proof(size1, size2, BIG)
    assert len(BIG.calls) <= 1
    assert sum(BIG.calls) <= 3 * size2.bit_length()
    expected = [] if size1 == size2 else naive_subproof(size1, BIG_LEAVES[:size2], True)
    assert proof == expected
    verify_consistency(
        size1, size2, proof, naive_mth(BIG_LEAVES[:size1]), naive_mth(BIG_LEAVES[:size2])
    )


def test_consistency_from_empty_tree() -> None:
    assert consistency_proof(0, 10, BIG) == []
    verify_consistency(0, 10, [], EMPTY_ROOT, tree_root(10, BIG))
    with pytest.raises(InvalidProofError):
        verify_consistency(0, 10, [], tree_root(1, BIG), tree_root(10, BIG))
    with pytest.raises(InvalidProofError):
        verify_consistency(0, 10, [EMPTY_ROOT], EMPTY_ROOT, tree_root(10, BIG))


def test_generation_rejects_bad_arguments() -> None:
    with pytest.raises(MalformedError):
        inclusion_proof(5, 5, BIG)
    with pytest.raises(MalformedError):
        inclusion_proof(-1, 5, BIG)
    with pytest.raises(MalformedError):
        consistency_proof(6, 5, BIG)
    with pytest.raises(LimitExceededError):
        tree_root(MAX_TREE_SIZE + 1, BIG)
    with pytest.raises(MalformedError):
        tree_root(True, BIG)


def test_missing_stored_hash_is_inconsistent_tree() -> None:
    small = MemoryHashStore.from_leaf_hashes(_leaves(3))
    with pytest.raises(InconsistentTreeError):
        inclusion_proof(0, 8, small)


class _BadReader:
    def __init__(self, result: list[bytes]) -> None:
        self.result = result

    def read_hashes(self, nodes: Sequence[NodeId]) -> list[bytes]:
        return self.result


@pytest.mark.parametrize(
    "result",
    [[], [b"x" * 32] * 50, [b"short"] * 50],
    ids=["too-few", "too-many", "short-hashes"],
)
def test_misbehaving_reader_is_inconsistent_tree(result: list[bytes]) -> None:
    with pytest.raises(InconsistentTreeError):
        inclusion_proof(3, 10, _BadReader(result))


def test_memory_store_grows_incrementally() -> None:
    store = MemoryHashStore()
    for i in range(100):
        store.append([BIG_LEAVES[i]])
        assert tree_root(i + 1, store) == naive_mth(BIG_LEAVES[: i + 1])
    assert store.size == 100


# -- strict verification: every single-byte change is rejected ------------------------------


def _flip(value: bytes, pos: int, mask: int) -> bytes:
    out = bytearray(value)
    out[pos % len(out)] ^= mask
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_inclusion_single_byte_change_rejected(data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=1, max_value=1000))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = inclusion_proof(index, size, BIG)
    root = tree_root(size, BIG)
    leaf = BIG_LEAVES[index]
    target = data.draw(st.integers(min_value=0, max_value=len(proof) + 1))
    pos = data.draw(st.integers(min_value=0, max_value=31))
    mask = data.draw(st.integers(min_value=1, max_value=255))
    if target == len(proof):
        leaf = _flip(leaf, pos, mask)
    elif target == len(proof) + 1:
        root = _flip(root, pos, mask)
    else:
        proof[target] = _flip(proof[target], pos, mask)
    with pytest.raises(InvalidProofError):
        verify_inclusion(leaf, index, size, proof, root)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_consistency_single_byte_change_rejected(data: st.DataObject) -> None:
    size2 = data.draw(st.integers(min_value=1, max_value=1000))
    size1 = data.draw(st.integers(min_value=1, max_value=size2))
    proof = consistency_proof(size1, size2, BIG)
    roots = [tree_root(size1, BIG), tree_root(size2, BIG)]
    target = data.draw(st.integers(min_value=0, max_value=len(proof) + 1))
    pos = data.draw(st.integers(min_value=0, max_value=31))
    mask = data.draw(st.integers(min_value=1, max_value=255))
    if target < len(proof):
        proof[target] = _flip(proof[target], pos, mask)
    else:
        roots[target - len(proof)] = _flip(roots[target - len(proof)], pos, mask)
    with pytest.raises(InvalidProofError):
        verify_consistency(size1, size2, proof, roots[0], roots[1])


@settings(deadline=None)
@given(st.data())
def test_proof_with_extra_or_missing_hash_rejected(data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=2, max_value=1000))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = inclusion_proof(index, size, BIG)
    root = tree_root(size, BIG)
    with pytest.raises(InvalidProofError):
        verify_inclusion(BIG_LEAVES[index], index, size, [*proof, EMPTY_ROOT], root)
    with pytest.raises(InvalidProofError):
        verify_inclusion(BIG_LEAVES[index], index, size, proof[:-1], root)
    size1 = data.draw(st.integers(min_value=1, max_value=size - 1))
    cproof = consistency_proof(size1, size, BIG)
    root1 = tree_root(size1, BIG)
    with pytest.raises(InvalidProofError):
        verify_consistency(size1, size, [*cproof, EMPTY_ROOT], root1, root)
    with pytest.raises(InvalidProofError):
        verify_consistency(size1, size, cproof[:-1], root1, root)


def test_wrong_index_rejected() -> None:
    proof = inclusion_proof(5, 8, BIG)
    root = tree_root(8, BIG)
    for other in (4, 6, 7):
        with pytest.raises(InvalidProofError):
            verify_inclusion(BIG_LEAVES[5], other, 8, proof, root)


# -- malformed input ------------------------------------------------------------------------

GOOD_PROOF = inclusion_proof(5, 8, BIG)
GOOD_ROOT = tree_root(8, BIG)


@pytest.mark.parametrize(
    ("leaf", "index", "size", "proof", "root", "error"),
    [
        (b"x" * 31, 5, 8, GOOD_PROOF, GOOD_ROOT, MalformedError),
        (BIG_LEAVES[5], 5, 8, GOOD_PROOF, b"x" * 33, MalformedError),
        (BIG_LEAVES[5], 5, 8, [*GOOD_PROOF[:2], b""], GOOD_ROOT, MalformedError),
        (BIG_LEAVES[5], 5, 8, b"".join(GOOD_PROOF), GOOD_ROOT, MalformedError),
        (BIG_LEAVES[5], 5, 8, "not a proof", GOOD_ROOT, MalformedError),
        (BIG_LEAVES[5], 5, 8, [GOOD_ROOT] * 1000, GOOD_ROOT, LimitExceededError),
        (BIG_LEAVES[5], 8, 8, GOOD_PROOF, GOOD_ROOT, MalformedError),
        (BIG_LEAVES[5], -1, 8, GOOD_PROOF, GOOD_ROOT, MalformedError),
        (BIG_LEAVES[5], 5, -8, GOOD_PROOF, GOOD_ROOT, MalformedError),
        (BIG_LEAVES[5], 5, 2**64, GOOD_PROOF, GOOD_ROOT, LimitExceededError),
        (BIG_LEAVES[5], 2**64 - 1, 8, GOOD_PROOF, GOOD_ROOT, LimitExceededError),
        (BIG_LEAVES[5], 5.0, 8, GOOD_PROOF, GOOD_ROOT, MalformedError),
        (BIG_LEAVES[5], True, 8, GOOD_PROOF, GOOD_ROOT, MalformedError),
        ("x" * 32, 5, 8, GOOD_PROOF, GOOD_ROOT, MalformedError),
        (BIG_LEAVES[5], 5, 8, [*GOOD_PROOF[:2], "x" * 32], GOOD_ROOT, MalformedError),
    ],
    ids=[
        "short-leaf",
        "long-root",
        "empty-proof-hash",
        "proof-as-bytes",
        "proof-as-text",
        "huge-proof",
        "index-equals-size",
        "negative-index",
        "negative-size",
        "size-beyond-2-63",
        "index-2-64-minus-1",
        "float-index",
        "bool-index",
        "text-leaf",
        "text-proof-hash",
    ],
)
def test_verify_inclusion_malformed(
    leaf: object, index: object, size: object, proof: object, root: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        verify_inclusion(leaf, index, size, proof, root)  # type: ignore[arg-type]


def test_verify_consistency_malformed() -> None:
    root = GOOD_ROOT
    cases: list[tuple[object, ...]] = [
        (5, 4, [], root, root),
        (-1, 4, [], root, root),
        (1, 2**63, [], root, root),
        (1, 2, [], root[:31], root),
        (1, 2, [], root, root + b"\x00"),
        (1, 2, [b"\x00" * 31], root, root),
        (1, 2, None, root, root),
    ]
    for case in cases:
        with pytest.raises(MalformedError):
            verify_consistency(*case)  # type: ignore[arg-type]


def test_errors_are_crypto_errors_never_builtin() -> None:
    """Garbage of every shape gives a CryptoError, never IndexError/TypeError leaking out."""
    junk: list[object] = [None, b"", b"x" * 32, "x", 3, [b"x"], [None], {}, -1, 2**70]
    for leaf in junk:
        for proof in ([], [b"y" * 32], junk):
            try:
                verify_inclusion(leaf, 0, 2, proof, GOOD_ROOT)  # type: ignore[arg-type]
            except CryptoError:
                pass
            else:
                pytest.fail("accepted garbage")
