"""RFC 9162 section 2.1 Merkle tree hashing, proof generation and strict proof verification.

Normative text: specs/merkle.md. Hashes are SHA-256 (RFC 9162 2.1.1): a leaf hashes as
``SHA-256(0x00 || data)``, an interior node as ``SHA-256(0x01 || left || right)``.

Proofs are generated from *stored* hashes of complete (perfect) subtrees, read through the
:class:`HashReader` protocol, so the hub never rehashes its tree: a proof or a root costs
O(log n) hash reads in one batched call. A node is addressed as ``NodeId(level, n)``: the
root of the perfect subtree of ``2**level`` leaves that starts at leaf ``n * 2**level``.

Verification never returns a bool: it returns ``None`` or raises. Structurally impossible input
(a hash that is not 32 bytes, an index outside the tree, ``size1 > size2``) raises
:class:`~crypto.errors.MalformedError`; a well-formed proof that does not lead to the root
raises :class:`~crypto.errors.InvalidProofError`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from crypto._common import MAX_INT63
from crypto.errors import (
    InconsistentTreeError,
    InvalidProofError,
    LimitExceededError,
    MalformedError,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "HashReader",
    "MemoryHashStore",
    "NodeId",
    "check_size",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "pair_hashes",
    "range_nodes",
    "root_from_leaf_hashes",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Bytes in every hash of the tree (SHA-256)."""

MAX_TREE_SIZE = MAX_INT63
"""Largest tree size (and so index) accepted anywhere: a signed 64-bit integer, as in Go's tlog,
C2SP checkpoints and SQL BIGINT columns. Larger numbers are rejected, never wrapped."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""Root of the empty tree: SHA-256 of the empty string (RFC 9162 2.1.1)."""

_MAX_PROOF_LENGTH = 2 * 64
"""No valid proof for a tree of at most MAX_TREE_SIZE leaves is longer; longer input is
rejected before any hashing."""

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """Hash of one log entry: SHA-256(0x00 || data). The prefix keeps leaves and nodes apart."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an interior node: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def pair_hashes(level: Sequence[bytes]) -> list[bytes]:
    """``node_hash`` of each consecutive pair (0-1, 2-3, ...); an odd last hash is left out.

    One level of a tree in one comprehension over hashlib: the shared hot loop of roots,
    appends and tiles, where Python overhead would otherwise rival the SHA-256 cost.
    """
    sha = _sha256
    it = iter(level)
    return [sha(b"\x01" + a + b).digest() for a, b in zip(it, it, strict=False)]


class NodeId(NamedTuple):
    """The root of the perfect subtree of ``2**level`` leaves starting at leaf ``n * 2**level``
    (Go tlog's stored-hash addressing, as a pair rather than a packed integer)."""

    level: int
    n: int


class HashReader(Protocol):
    """Storage of complete-subtree hashes: the only thing proof generation reads.

    ``read_hashes`` returns one 32-byte hash per requested node, in request order, in one call
    (so a database or a tile server is asked once per proof, not once per hash). A node is only
    requested if its whole subtree lies inside the tree the caller names.
    """

    def read_hashes(self, nodes: Sequence[NodeId]) -> Sequence[bytes]:
        """Return the stored hash of every node in ``nodes``, in order."""
        ...


# -- input checks ---------------------------------------------------------------------------


def check_size(value: object, what: str) -> int:
    """Return ``value`` if it is an int in [0, MAX_TREE_SIZE]; raise MalformedError otherwise.

    Sizes and indexes come from untrusted JSON and headers, so bools, negatives and numbers
    beyond 63 bits are refused here rather than wrapping or overflowing elsewhere.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedError(f"{what} must be an integer")
    if value < 0:
        raise MalformedError(f"{what} must not be negative")
    if value > MAX_TREE_SIZE:
        raise LimitExceededError(f"{what} exceeds the largest supported tree size 2**63-1")
    return value


def _check_hash(value: object, what: str) -> bytes:
    if type(value) is bytes and len(value) == HASH_SIZE:
        return value
    if not isinstance(value, bytes | bytearray | memoryview):
        raise MalformedError(f"{what} must be bytes")
    if len(value) != HASH_SIZE:
        raise MalformedError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")
    return bytes(value)


def _check_proof(proof: object) -> list[bytes]:
    if (
        type(proof) is not list
        and type(proof) is not tuple
        and (
            isinstance(proof, bytes | bytearray | memoryview | str)
            or not isinstance(proof, Sequence)
        )
    ):
        raise MalformedError("a proof must be a sequence of 32-byte hashes")
    if len(proof) > _MAX_PROOF_LENGTH:
        raise LimitExceededError(f"a proof has at most {_MAX_PROOF_LENGTH} hashes")
    # Fast path in C (map/set): per-item checks in Python would cost as much as the hashing.
    if set(map(type, proof)) <= {bytes} and set(map(len, proof)) <= {HASH_SIZE}:
        return list(proof)
    return [_check_hash(p, f"proof hash {i}") for i, p in enumerate(proof)]


def _equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


# -- tree shape -----------------------------------------------------------------------------


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2): RFC 9162's split point k."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[NodeId]:
    """The perfect subtrees that cover leaves [start, end), left to right, largest possible.

    For the ranges RFC 9162 proofs use (a subtree aligned to a power of two at least as large as
    the range), folding these nodes right to left gives MTH(D[start:end]).
    """
    nodes: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        nodes.append(NodeId(level, start >> level))
        start += 1 << level
    return nodes


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTH form PATH(index, D[0:size]) (RFC 9162 2.1.3.1), proof order."""
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def _consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTH form PROOF(size1, D[0:size2]) (RFC 9162 2.1.4.1), proof order."""
    ranges: list[tuple[int, int]] = []
    if size1 == 0 or size1 == size2:
        return ranges
    lo, hi, m, whole = 0, size2, size1, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            m -= k
            whole = False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def _hashes_of_ranges(ranges: Sequence[tuple[int, int]], reader: HashReader) -> list[bytes]:
    """MTH of each range, from one batched read of the perfect subtrees that cover them."""
    per_range = [range_nodes(lo, hi) for lo, hi in ranges]
    wanted = list(dict.fromkeys(node for nodes in per_range for node in nodes))
    got = reader.read_hashes(wanted)
    if len(got) != len(wanted):
        raise InconsistentTreeError(
            f"hash storage returned {len(got)} hashes for {len(wanted)} requested nodes"
        )
    stored: dict[NodeId, bytes] = {}
    for node, value in zip(wanted, got, strict=True):
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise InconsistentTreeError(
                f"hash storage returned a malformed hash for node {tuple(node)}"
            )
        stored[node] = value
    out: list[bytes] = []
    for nodes in per_range:
        acc = stored[nodes[-1]]
        for node in reversed(nodes[:-1]):
            acc = node_hash(stored[node], acc)
        out.append(acc)
    return out


# -- generation -----------------------------------------------------------------------------


def tree_root(size: int, reader: HashReader) -> bytes:
    """MTH(D[0:size]) from at most popcount(size) stored subtree hashes."""
    check_size(size, "tree size")
    if size == 0:
        return EMPTY_ROOT
    return _hashes_of_ranges([(0, size)], reader)[0]


def inclusion_proof(index: int, size: int, reader: HashReader) -> list[bytes]:
    """The RFC 9162 inclusion proof PATH(index, D[0:size]), deepest sibling first."""
    check_size(size, "tree size")
    check_size(index, "leaf index")
    if index >= size:
        raise MalformedError("leaf index must be smaller than the tree size")
    return _hashes_of_ranges(_inclusion_ranges(index, size), reader)


def consistency_proof(size1: int, size2: int, reader: HashReader) -> list[bytes]:
    """The RFC 9162 consistency proof PROOF(size1, D[0:size2]); empty if size1 is 0 or size2."""
    check_size(size1, "first tree size")
    check_size(size2, "second tree size")
    if size1 > size2:
        raise MalformedError("the first tree size must not exceed the second")
    return _hashes_of_ranges(_consistency_ranges(size1, size2), reader)


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes held in memory, level by level (a lone right node rises).

    Pairing level by level and promoting an odd last node is the same tree as RFC 9162's
    split-at-the-largest-power-of-two recursion.
    """
    level = [_check_hash(h, f"leaf hash {i}") for i, h in enumerate(leaf_hashes)]
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        nxt = pair_hashes(level)
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0]


# -- verification ---------------------------------------------------------------------------


def _inclusion_length(index: int, size: int) -> int:
    """Length of a valid inclusion proof: the levels where the paths to index and to size-1
    differ, plus one per left subtree hanging off the right border above them."""
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner + border


def _root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """Fold a length-checked inclusion proof into the root it implies (RFC 9162 2.1.3.2)."""
    sha = _sha256
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if fn & 1 or fn == sn:
            r = sha(b"\x01" + p + r).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = sha(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that the leaf hash sits at ``index`` of the tree of ``size`` leaves with ``root``.

    Raises MalformedError for impossible input and InvalidProofError when the proof does not
    lead to ``root``; returns None only when it does.
    """
    check_size(size, "tree size")
    check_size(index, "leaf index")
    leaf = _check_hash(leaf_hash, "leaf hash")
    trusted = _check_hash(root, "root")
    path = _check_proof(proof)
    if index >= size:
        raise MalformedError("leaf index must be smaller than the tree size")
    if len(path) != _inclusion_length(index, size):
        raise InvalidProofError(
            f"an inclusion proof for index {index} in a tree of {size} has "
            f"{_inclusion_length(index, size)} hashes, got {len(path)}"
        )
    if not _equal(_root_from_inclusion(leaf, index, size, path), trusted):
        raise InvalidProofError("inclusion proof does not lead to the expected root")


def _consistency_length(size1: int, size2: int) -> int:
    """Length of a valid consistency proof for 0 < size1 < size2."""
    shift = (size1 & -size1).bit_length() - 1
    inner = ((size1 - 1) ^ (size2 - 1)).bit_length()
    border = ((size1 - 1) >> inner).bit_count()
    return (inner - shift) + border + (0 if size1 == 1 << shift else 1)


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` leaves with ``root2`` extends the one with ``root1``.

    Equal sizes need an empty proof and equal roots; size1 = 0 needs an empty proof and
    root1 = EMPTY_ROOT (every tree extends the empty tree). Raises, never returns False.
    """
    check_size(size1, "first tree size")
    check_size(size2, "second tree size")
    path = _check_proof(proof)
    if size1 > size2:
        raise MalformedError("the first tree size must not exceed the second")
    if size1 == size2 > 0:
        # RFC 9162 2.1.4.2 step 1: equal sizes need an empty proof and equal roots, and nothing
        # else is looked at (as transparency-dev's verifier and its conformance probe
        # `sizes-are-equal-one-and-proof-is-empty` expect), so the lengths are not checked here.
        # When they differ, a root that is not 32 bytes is still reported as malformed.
        if not isinstance(root1, bytes) or not isinstance(root2, bytes):
            raise MalformedError("roots must be bytes")
        if path:
            raise InvalidProofError("a consistency proof between equal sizes must be empty")
        if not _equal(root1, root2):
            _check_hash(root1, "first root")
            _check_hash(root2, "second root")
            raise InvalidProofError("trees of equal size have different roots")
        return
    first = _check_hash(root1, "first root")
    second = _check_hash(root2, "second root")
    if size1 == 0:
        if path:
            raise InvalidProofError("a consistency proof from the empty tree must be empty")
        if not _equal(first, EMPTY_ROOT) or (size2 == 0 and not _equal(second, EMPTY_ROOT)):
            raise InvalidProofError("the root of the empty tree is not SHA-256 of nothing")
        return
    want = _consistency_length(size1, size2)
    if len(path) != want:
        raise InvalidProofError(
            f"a consistency proof from {size1} to {size2} has {want} hashes, got {len(path)}"
        )
    if size1 & (size1 - 1) == 0:
        path = [first, *path]
    sha = _sha256
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if fn & 1 or fn == sn:
            fr = sha(b"\x01" + c + fr).digest()
            sr = sha(b"\x01" + c + sr).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = sha(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProofError("consistency proof does not reach the top of the second tree")
    if not _equal(fr, first):
        raise InvalidProofError("consistency proof does not lead to the first root")
    if not _equal(sr, second):
        raise InvalidProofError("consistency proof does not lead to the second root")


# -- in-memory storage ----------------------------------------------------------------------


class MemoryHashStore:
    """Every complete-subtree hash of a tree, in lists per level: a HashReader for tests and
    small tools. ``levels[l][i]`` is the hash of ``NodeId(l, i)``."""

    def __init__(self) -> None:
        self.levels: list[list[bytes]] = [[]]

    @classmethod
    def from_leaf_hashes(cls, leaf_hashes: Sequence[bytes]) -> MemoryHashStore:
        """A store holding the tree of these leaf hashes."""
        store = cls()
        store.append(leaf_hashes)
        return store

    @property
    def size(self) -> int:
        """Number of leaves stored."""
        return len(self.levels[0])

    def append(self, leaf_hashes: Sequence[bytes]) -> None:
        """Add leaves and every subtree hash they complete."""
        self.levels[0].extend(_check_hash(h, f"leaf hash {i}") for i, h in enumerate(leaf_hashes))
        level = 0
        while len(self.levels[level]) >= 2:
            if len(self.levels) == level + 1:
                self.levels.append([])
            below, above = self.levels[level], self.levels[level + 1]
            for i in range(len(above), len(below) // 2):
                above.append(node_hash(below[2 * i], below[2 * i + 1]))
            level += 1

    def read_hashes(self, nodes: Sequence[NodeId]) -> list[bytes]:
        """HashReader: the stored hash of each node; InconsistentTreeError if one is missing."""
        out: list[bytes] = []
        for level, index in nodes:
            if not 0 <= level < len(self.levels) or not 0 <= index < len(self.levels[level]):
                raise InconsistentTreeError(f"no stored hash for node ({level}, {index})")
            out.append(self.levels[level][index])
        return out
