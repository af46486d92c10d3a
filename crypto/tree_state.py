"""The append-only tree state the hub extends and persists: size plus compact range (frontier).

Normative text: specs/merkle.md section "Tree state". The frontier of a tree of ``size`` leaves
is the list of roots of the perfect subtrees that cover [0, size), largest (leftmost) first:
exactly popcount(size) hashes, one per set bit of ``size``. It is all that is needed to append
more leaves and compute the new root, so the sequencer keeps only this between batches.

``append`` works level by level over whole batches (list comprehensions over hashlib) so that
Python overhead stays a small fraction of the SHA-256 cost: about one leaf hash plus one node
hash per appended leaf.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from crypto.errors import InconsistentTreeError, LimitExceededError, MalformedError
from crypto.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_TREE_SIZE,
    HashReader,
    NodeId,
    check_size,
    pair_hashes,
    range_nodes,
)

__all__ = ["STATE_VERSION", "CompletedNodes", "TreeState"]

STATE_VERSION = 1
"""First byte of the serialised state; bumped on any change of the layout."""

_HEADER = struct.Struct(">BQ")
_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class CompletedNodes:
    """Subtree hashes that became complete when the tree grew from old_size to new_size.

    ``levels[l]`` lists, in index order, the hashes of nodes ``NodeId(l, i)`` for
    ``i`` in ``range(old_size >> l, new_size >> l)``: the hub writes exactly these (as hash rows
    or tiles) and never has to rehash anything later. Indexes are implied, so no per-node
    objects are built on the hot path.
    """

    old_size: int
    new_size: int
    levels: tuple[list[bytes], ...]

    def first_index(self, level: int) -> int:
        """Index of the first hash in ``levels[level]``."""
        return self.old_size >> level

    def items(self) -> Iterator[tuple[NodeId, bytes]]:
        """Every completed node with its hash, level by level."""
        for level, hashes in enumerate(self.levels):
            start = self.old_size >> level
            for offset, value in enumerate(hashes):
                yield NodeId(level, start + offset), value

    def __len__(self) -> int:
        return sum(len(hashes) for hashes in self.levels)


@dataclass(frozen=True, slots=True)
class TreeState:
    """An immutable tree size and its frontier; ``append`` returns a new state."""

    size: int
    frontier: tuple[bytes, ...]

    def __post_init__(self) -> None:
        check_size(self.size, "tree size")
        if len(self.frontier) != self.size.bit_count():
            raise MalformedError(
                f"a tree of {self.size} leaves has {self.size.bit_count()} frontier hashes, "
                f"got {len(self.frontier)}"
            )
        for i, value in enumerate(self.frontier):
            if not isinstance(value, bytes) or len(value) != HASH_SIZE:
                raise MalformedError(f"frontier hash {i} must be {HASH_SIZE} bytes")

    @classmethod
    def empty(cls) -> TreeState:
        """The state of a tree with no leaves."""
        return cls(0, ())

    @classmethod
    def from_reader(cls, size: int, reader: HashReader) -> TreeState:
        """Rebuild the state of a stored tree from its popcount(size) frontier hashes."""
        check_size(size, "tree size")
        nodes = range_nodes(0, size)
        got = list(reader.read_hashes(nodes))
        if len(got) != len(nodes):
            raise InconsistentTreeError(
                f"hash storage returned {len(got)} hashes for {len(nodes)} requested nodes"
            )
        try:
            return cls(size, tuple(got))
        except MalformedError as exc:
            raise InconsistentTreeError("hash storage returned a malformed hash") from exc

    def root(self) -> bytes:
        """MTH of the whole tree: the frontier folded right to left."""
        if not self.frontier:
            return EMPTY_ROOT
        acc = self.frontier[-1]
        for value in reversed(self.frontier[:-1]):
            acc = _sha256(b"\x01" + value + acc).digest()
        return acc

    def append(self, leaf_hashes: Sequence[bytes]) -> tuple[TreeState, CompletedNodes]:
        """Append leaf hashes; return the new state and every subtree hash they complete."""
        # Checked with C-level map/set: a per-item Python loop would cost a third of a hash.
        if not set(map(type, leaf_hashes)) <= {bytes} or not set(map(len, leaf_hashes)) <= {
            HASH_SIZE
        }:
            raise MalformedError(f"every leaf hash must be {HASH_SIZE} bytes")
        old = self.size
        new = old + len(leaf_hashes)
        if new > MAX_TREE_SIZE:
            raise LimitExceededError("appending would exceed the largest supported tree size")
        if not leaf_hashes:
            return self, CompletedNodes(old, old, ())
        # The frontier hash at tree level l exists iff bit l of the old size is set.
        by_level: dict[int, bytes] = {}
        bits = [lvl for lvl in range(old.bit_length()) if old >> lvl & 1]
        for lvl, value in zip(reversed(bits), self.frontier, strict=True):
            by_level[lvl] = value
        levels: list[list[bytes]] = []
        cur = list(leaf_hashes)
        start = old  # index of cur[0] at this level
        level = 0
        while cur:
            levels.append(cur)
            if start & 1:
                seq = [by_level[level], *cur]
                seq_start = start - 1
            else:
                seq = cur
                seq_start = start
            cur = pair_hashes(seq)
            start = seq_start >> 1
            level += 1
        frontier: list[bytes] = []
        for lvl in range(new.bit_length() - 1, -1, -1):
            if not new >> lvl & 1:
                continue
            if lvl < len(levels) and (new >> lvl) > (old >> lvl):
                frontier.append(levels[lvl][-1])
            else:
                frontier.append(by_level[lvl])
        return TreeState(new, tuple(frontier)), CompletedNodes(old, new, tuple(levels))

    def to_bytes(self) -> bytes:
        """Version byte 0x01, size as big-endian uint64, then the frontier hashes."""
        return _HEADER.pack(STATE_VERSION, self.size) + b"".join(self.frontier)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        expected_size: int | None = None,
        expected_root: bytes | None = None,
    ) -> TreeState:
        """Parse ``to_bytes`` output strictly; optionally check it against a checkpoint.

        Raises MalformedError for any deviation from the layout and InconsistentTreeError when
        a well-formed state does not have the expected size or root. Pass both: the root alone
        does not bind the size.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MalformedError("a tree state must be bytes")
        data = bytes(data)
        if len(data) < _HEADER.size:
            raise MalformedError(f"a tree state has at least {_HEADER.size} bytes")
        version, size = _HEADER.unpack_from(data)
        if version != STATE_VERSION:
            raise MalformedError(f"unsupported tree state version {version}")
        if size > MAX_TREE_SIZE:
            raise LimitExceededError("tree state size exceeds 2**63-1")
        want = _HEADER.size + HASH_SIZE * size.bit_count()
        if len(data) != want:
            raise MalformedError(
                f"a tree state of size {size} is {want} bytes long, got {len(data)}"
            )
        body = data[_HEADER.size :]
        frontier = tuple(body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE))
        state = cls(size, frontier)
        if expected_size is not None and state.size != expected_size:
            raise InconsistentTreeError("tree state does not have the expected size")
        if expected_root is not None and state.root() != expected_root:
            raise InconsistentTreeError("tree state does not have the expected root")
        return state
