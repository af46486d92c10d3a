"""crypto/tree_state.py: batch appends equal one-by-one appends and the naive tree, completed
nodes are exactly the new stored hashes, and serialisation is byte-exact and strict."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import InconsistentTreeError, LimitExceededError, MalformedError
from crypto.merkle import (
    EMPTY_ROOT,
    MAX_TREE_SIZE,
    MemoryHashStore,
    leaf_hash,
    root_from_leaf_hashes,
    tree_root,
)
from crypto.tree_state import STATE_VERSION, TreeState

LEAVES = [leaf_hash(b"state %d" % i) for i in range(2100)]
STORE = MemoryHashStore.from_leaf_hashes(LEAVES)


def _batches(total: int, sizes: list[int]) -> list[int]:
    out, used = [], 0
    for s in sizes:
        if used >= total:
            break
        s = min(s, total - used)
        out.append(s)
        used += s
    if used < total:
        out.append(total - used)
    return out


def test_empty_state() -> None:
    state = TreeState.empty()
    assert state.size == 0
    assert state.root() == EMPTY_ROOT
    assert state.to_bytes() == bytes([STATE_VERSION]) + bytes(8)
    same, completed = state.append([])
    assert same == state
    assert len(completed) == 0


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=0, max_value=2100),
    st.lists(st.integers(min_value=0, max_value=700), max_size=30),
)
def test_random_batches_equal_one_by_one(total: int, sizes: list[int]) -> None:
    one = TreeState.empty()
    for h in LEAVES[:total]:
        one, _ = one.append([h])
    batched = TreeState.empty()
    used = 0
    for n in _batches(total, sizes):
        batched, completed = batched.append(LEAVES[used : used + n])
        # Every completed node is a stored hash of the full tree, at the implied address.
        for node, value in completed.items():
            assert STORE.read_hashes([node]) == [value]
            assert (node.n + 1) << node.level <= used + n
            assert (node.n + 1) << node.level > used
        used += n
    assert batched == one
    assert batched.root() == root_from_leaf_hashes(LEAVES[:total])
    assert batched.root() == tree_root(total, STORE)


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=2100), st.integers(min_value=0, max_value=2100))
def test_completed_nodes_are_exactly_the_new_ones(a: int, b: int) -> None:
    old, new = min(a, b), max(a, b)
    state, _ = TreeState.empty().append(LEAVES[:old])
    _, completed = state.append(LEAVES[old:new])
    got = {node for node, _ in completed.items()}
    want = {(level, n) for level in range(12) for n in range(old >> level, new >> level)}
    assert got == want
    for level in range(len(completed.levels)):
        assert completed.first_index(level) == old >> level


def test_from_reader_rebuilds_state() -> None:
    for size in (0, 1, 5, 1024, 2047, 2100):
        state, _ = TreeState.empty().append(LEAVES[:size])
        assert TreeState.from_reader(size, STORE) == state
    with pytest.raises(InconsistentTreeError):
        TreeState.from_reader(4096, STORE)


def test_append_rejects_bad_leaves() -> None:
    state = TreeState.empty()
    for bad in ([b"x" * 31], [b"x" * 33], ["x" * 32], [bytearray(32)], [None]):
        with pytest.raises(MalformedError):
            state.append(bad)  # type: ignore[arg-type]


def test_append_beyond_max_size() -> None:
    big = TreeState(MAX_TREE_SIZE, (b"\x00" * 32,) * MAX_TREE_SIZE.bit_count())
    with pytest.raises(LimitExceededError):
        big.append([LEAVES[0]])


@pytest.mark.parametrize(
    ("size", "count"),
    [(0, 1), (1, 0), (3, 1), (3, 3), (-1, 0), (2**63, 1)],
    ids=["empty-with-hash", "one-without", "three-with-one", "three-with-three", "neg", "huge"],
)
def test_constructor_validates(size: int, count: int) -> None:
    with pytest.raises(MalformedError):
        TreeState(size, (b"\x00" * 32,) * count)


# -- serialisation --------------------------------------------------------------------------


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=2100))
def test_serialisation_round_trips(size: int) -> None:
    state, _ = TreeState.empty().append(LEAVES[:size])
    raw = state.to_bytes()
    assert len(raw) == 9 + 32 * size.bit_count()
    assert raw[:9] == struct.pack(">BQ", 1, size)
    assert TreeState.from_bytes(raw, expected_size=size, expected_root=state.root()) == state
    assert TreeState.from_bytes(memoryview(raw)) == state  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_corruption_is_rejected(data: st.DataObject) -> None:
    """One changed, dropped or added byte never yields the checkpoint's state silently."""
    size = data.draw(st.integers(min_value=0, max_value=2100))
    state, _ = TreeState.empty().append(LEAVES[:size])
    raw = bytearray(state.to_bytes())
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if kind == "flip":
        pos = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[pos] ^= data.draw(st.integers(min_value=1, max_value=255))
    elif kind == "truncate":
        del raw[data.draw(st.integers(min_value=0, max_value=len(raw) - 1)) :]
    else:
        raw += data.draw(st.binary(min_size=1, max_size=64))
    with pytest.raises((MalformedError, InconsistentTreeError)):
        TreeState.from_bytes(bytes(raw), expected_size=size, expected_root=state.root())


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x01",
        b"\x01" + bytes(7),
        b"\x02" + bytes(8),
        b"\x00" + bytes(8),
        b"\x01" + bytes(8) + b"\x00",
        b"\x01" + struct.pack(">Q", 1),
        b"\x01" + struct.pack(">Q", 1) + bytes(31),
        b"\x01" + struct.pack(">Q", 1) + bytes(64),
        b"\x01" + struct.pack(">Q", 3) + bytes(32),
        b"\x01" + b"\xff" * 8 + bytes(32 * 64),
        b"\x01" + struct.pack(">Q", 2**63) + bytes(32),
    ],
    ids=[
        "empty",
        "version-only",
        "short-size",
        "version-2",
        "version-0",
        "trailing-byte",
        "missing-hash",
        "short-hash",
        "extra-hash",
        "popcount-mismatch",
        "size-2-64-minus-1",
        "size-2-63",
    ],
)
def test_from_bytes_rejects(raw: bytes) -> None:
    with pytest.raises(MalformedError):
        TreeState.from_bytes(raw)


def test_from_bytes_rejects_non_bytes() -> None:
    with pytest.raises(MalformedError):
        TreeState.from_bytes("\x01" + "\x00" * 8)  # type: ignore[arg-type]


def test_from_bytes_checks_expected_root_and_size() -> None:
    state, _ = TreeState.empty().append(LEAVES[:5])
    raw = state.to_bytes()
    with pytest.raises(InconsistentTreeError):
        TreeState.from_bytes(raw, expected_root=EMPTY_ROOT)
    with pytest.raises(InconsistentTreeError):
        TreeState.from_bytes(raw, expected_size=6)
