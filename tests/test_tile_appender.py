"""crypto/tiles.py TileAppender: one entry at a time must write exactly what the stateless
append_tiles writes (paths, bytes, order), with the same root and state, on every size: from
empty, across 256-leaf tile boundaries, across level-2 and level-3 tiles (from a synthetic right
edge), up to the largest tree size; and against the Sunlight-made tiles in tests/vectors."""

from __future__ import annotations

import base64
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import InconsistentTreeError, LimitExceededError, MalformedError
from crypto.merkle import EMPTY_ROOT, MAX_TREE_SIZE, leaf_hash, root_from_leaf_hashes
from crypto.tiles import (
    MAX_ENTRY_SIZE,
    EntryBundle,
    Tile,
    TileAppender,
    append_tiles,
    encode_entry_bundle,
    partial_tiles,
)
from crypto.tree_state import TreeState

MIRROR_ROOT_B64 = "gw31yQrqZZCcEOPrzX+bpy3nJ6QgngTKn8G1m0i62uU="


def _entry(i: int) -> bytes:
    return b"record %d" % i


class Reference:
    """A log grown with the stateless append_tiles over a dict of tile bytes."""

    def __init__(self, tiles: dict[str, bytes] | None = None, size: int = 0) -> None:
        self.tiles: dict[str, bytes] = dict(tiles or {})
        self.size = size

    def read(self, tile: Tile | EntryBundle) -> bytes:
        return self.tiles[tile.path]

    def append(self, entries: list[bytes]) -> tuple[dict[str, bytes], bytes, TreeState]:
        update = append_tiles(self.size, self.read, entries=entries)
        self.tiles.update(update.tiles)
        self.size = update.state.size
        return update.tiles, update.root, update.state


def _check_step(app: TileAppender, ref: Reference, entries: list[bytes], single: bool) -> None:
    want, root, state = ref.append(entries)
    got = app.append(entries[0]) if single else app.extend(entries)
    assert list(got.items()) == list(want.items())  # same paths, bytes and write order
    assert app.size == state.size
    assert app.state() == state
    assert app.root() == root


def test_mirror_tiles_one_entry_at_a_time(conformance_vectors: Path) -> None:
    mirror = conformance_vectors / "note" / "sunlight-mirror"
    app = TileAppender()
    assert app.root() == EMPTY_ROOT
    written: dict[str, bytes] = {}
    for i in range(300):
        written.update(app.append(_entry(i)))
    assert base64.b64encode(app.root()).decode() == MIRROR_ROOT_B64
    for path in ("tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1"):
        assert written[path] == (mirror / path).read_bytes(), path
    assert written["tile/entries/001.p/44"] == encode_entry_bundle(
        [_entry(i) for i in range(256, 300)]
    )


def test_every_size_to_600_matches_append_tiles_and_rfc6962_root() -> None:
    app, ref = TileAppender(), Reference()
    leaves: list[bytes] = []
    for i in range(600):
        _check_step(app, ref, [_entry(i)], single=True)
        leaves.append(leaf_hash(_entry(i)))
        assert app.root() == root_from_leaf_hashes(leaves)


_BASES: dict[int, Reference] = {}


def _base(size: int) -> Reference:
    """A reference log of ``size`` entries built in large batches (cached per size)."""
    if size not in _BASES:
        ref = Reference()
        while ref.size < size:
            n = min(65536, size - ref.size)
            ref.append([_entry(i) for i in range(ref.size, ref.size + n)])
        _BASES[size] = ref
    base = _BASES[size]
    return Reference(base.tiles, base.size)


START_SIZES = [0, 1, 7, 250, 255, 256, 511, 65536 - 300, 65536 - 1, 65536, 2 * 65536 - 40]


@settings(max_examples=40, deadline=None)
@given(
    start=st.sampled_from(START_SIZES),
    steps=st.lists(
        st.one_of(
            st.just(1),
            st.just(1),
            st.integers(min_value=0, max_value=8),
            st.integers(min_value=9, max_value=700),
        ),
        min_size=1,
        max_size=40,
    ),
    batched=st.lists(st.booleans(), min_size=40, max_size=40),
    with_state=st.booleans(),
)
def test_random_single_and_batch_appends_match_append_tiles(
    start: int, steps: list[int], batched: list[bool], with_state: bool
) -> None:
    ref = _base(start)
    state = TreeState.empty()
    if with_state and start:
        state = append_tiles(0, ref.read, entries=[_entry(i) for i in range(start)]).state
    app = TileAppender.from_tiles(start, ref.read, state=state if with_state else None)
    assert app.size == start
    for n, batch in zip(steps, batched, strict=False):
        entries = [_entry(i) for i in range(ref.size, ref.size + n)]
        _check_step(app, ref, entries, single=n == 1 and not batch)
    if ref.size <= 3000:
        assert app.root() == root_from_leaf_hashes([leaf_hash(_entry(i)) for i in range(ref.size)])


def _synthetic_edge(size: int, rnd: random.Random) -> dict[str, bytes]:
    """The partial tiles and bundle of a tree of ``size`` with made-up hashes: all that
    append_tiles and TileAppender read, so huge trees can be tested without building them."""
    out: dict[str, bytes] = {}
    tiles = partial_tiles(size)
    for tile in tiles:
        out[tile.path] = rnd.randbytes(32 * tile.width)
    if size % 256:
        width = size % 256
        entries = [b"synthetic %d" % i for i in range(width)]
        out[EntryBundle(size >> 8, width).path] = encode_entry_bundle(entries)
        level0 = tiles[0].path
        out[level0] = out[level0][:-32] + leaf_hash(entries[-1])
    return out


@pytest.mark.parametrize(
    "start",
    [
        (1 << 24) - 300,  # completes a level-2 tile: the first level-3 hash
        (1 << 32) - 5,  # carries through four tile levels
        (1 << 40) + (1 << 24) - 2,
        MAX_TREE_SIZE - 600,
    ],
)
def test_single_appends_across_high_tile_levels(start: int) -> None:
    rnd = random.Random(start)
    ref = Reference(_synthetic_edge(start, rnd), start)
    app = TileAppender.from_tiles(start, ref.read)
    for step in range(600):
        if ref.size == MAX_TREE_SIZE:
            break
        n = 1 if step % 50 else rnd.choice([2, 3, 17])
        n = min(n, MAX_TREE_SIZE - ref.size)
        entries = [b"e %d" % rnd.getrandbits(32) for _ in range(n)]
        _check_step(app, ref, entries, single=n == 1)


def test_full_tree_refuses_and_keeps_its_state() -> None:
    rnd = random.Random(1)
    start = MAX_TREE_SIZE - 2
    ref = Reference(_synthetic_edge(start, rnd), start)
    app = TileAppender.from_tiles(start, ref.read)
    _check_step(app, ref, [b"a"], single=True)
    _check_step(app, ref, [b"b"], single=True)
    assert app.size == MAX_TREE_SIZE
    root, state = app.root(), app.state()
    with pytest.raises(LimitExceededError):
        app.append(b"c")
    with pytest.raises(LimitExceededError):
        app.extend([b"c"])
    assert (app.size, app.root(), app.state()) == (MAX_TREE_SIZE, root, state)


def test_bad_entries_are_refused_without_change() -> None:
    app = TileAppender()
    app.extend([_entry(i) for i in range(300)])
    root, state = app.root(), app.state()
    for bad, error in (
        ("text", MalformedError),
        (bytearray(b"x"), MalformedError),
        (None, MalformedError),
        (b"x" * (MAX_ENTRY_SIZE + 1), LimitExceededError),
    ):
        with pytest.raises(error):
            app.append(bad)  # type: ignore[arg-type]
        with pytest.raises(error):
            app.extend([b"ok", bad])  # type: ignore[list-item]
        assert (app.size, app.root(), app.state()) == (300, root, state)
    ref = _base(300)
    _check_step(app, ref, [b"x" * MAX_ENTRY_SIZE], single=True)
    _check_step(app, ref, [b""], single=True)


def test_copy_is_independent() -> None:
    app = TileAppender()
    app.extend([_entry(i) for i in range(255)])
    twin = app.copy()
    first = app.append(b"a")
    assert twin.size == 255
    assert twin.append(b"a") == first
    assert twin.append(b"b") != app.append(b"c")
    assert twin.root() != app.root()


def test_from_tiles_checks_the_stored_edge() -> None:
    ref = _base(300)
    good = TileAppender.from_tiles(300, ref.read)
    other = append_tiles(0, lambda t: b"", entries=[b"other %d" % i for i in range(300)])
    with pytest.raises(InconsistentTreeError):
        TileAppender.from_tiles(300, ref.read, state=other.state)
    with pytest.raises(MalformedError):
        TileAppender.from_tiles(299, ref.read, state=good.state())
    tampered = dict(ref.tiles)
    tampered["tile/entries/001.p/44"] = encode_entry_bundle([b"x"] * 44)
    with pytest.raises(InconsistentTreeError):
        TileAppender.from_tiles(300, lambda t: tampered[t.path])
    tampered = dict(ref.tiles)
    tampered["tile/0/001.p/44"] = b"short"
    with pytest.raises(InconsistentTreeError):
        TileAppender.from_tiles(300, lambda t: tampered[t.path])
    tampered = dict(ref.tiles)
    tampered["tile/entries/001.p/44"] = b"\x00"
    with pytest.raises(InconsistentTreeError):
        TileAppender.from_tiles(300, lambda t: tampered[t.path])
