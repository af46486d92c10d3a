"""crypto/tiles.py: C2SP tlog-tiles paths, tile and bundle bytes, the sequencer's append step and
the verifying tile reader, against the Sunlight-made log in tests/vectors/note/sunlight-mirror
and against the naive definition of a tile."""

from __future__ import annotations

import base64
import gzip
import random
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import InconsistentTreeError, LimitExceededError, MalformedError
from crypto.merkle import (
    MAX_TREE_SIZE,
    MemoryHashStore,
    NodeId,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from crypto.tiles import (
    MAX_ENTRY_SIZE,
    EntryBundle,
    Tile,
    TileHashReader,
    append_tiles,
    changed_tiles,
    decode_entry_bundle,
    decode_tile,
    encode_entry_bundle,
    encode_tile,
    entry_bundles_for_size,
    parse_path,
    partial_tiles,
    tiles_for_size,
)
from crypto.tree_state import TreeState

MIRROR_ROOT_B64 = "gw31yQrqZZCcEOPrzX+bpy3nJ6QgngTKn8G1m0i62uU="
MIRROR_ENTRIES = [b"record %d" % i for i in range(300)]
MIRROR_FILES = [
    "tile/0/000",
    "tile/0/001.p/44",
    "tile/1/000.p/1",
    "tile/entries/000",
    "tile/entries/001.p/44",
]


def _no_tiles(tile: Tile | EntryBundle) -> bytes:
    raise AssertionError(f"an append to an empty tree read {tile.path}")


@pytest.fixture(scope="module")
def mirror(conformance_vectors: Path) -> Path:
    return conformance_vectors / "note" / "sunlight-mirror"


# -- Sunlight mirror: tiles byte for byte, root, proofs -------------------------------------


def test_mirror_root_is_the_checkpoint_root(mirror: Path) -> None:
    lines = (mirror / "checkpoint").read_text().splitlines()
    assert lines[1] == "300"
    assert lines[2] == MIRROR_ROOT_B64


def test_mirror_layout_is_what_changed_tiles_says(mirror: Path) -> None:
    on_disk = sorted(
        str(p.relative_to(mirror)) for p in (mirror / "tile").rglob("*") if p.is_file()
    )
    assert on_disk == sorted(MIRROR_FILES)
    hash_tiles = [t.path for t in changed_tiles(0, 300)]
    bundles = [b.path for b in entry_bundles_for_size(300)]
    assert sorted(hash_tiles + bundles) == sorted(MIRROR_FILES)
    assert [t.path for t in tiles_for_size(300)] == hash_tiles


@pytest.mark.parametrize("batch", [300, 1, 7, 44, 256, 257])
def test_mirror_hash_tiles_rebuilt_byte_for_byte(mirror: Path, batch: int) -> None:
    written: dict[str, bytes] = {}
    size = 0
    while size < 300:
        n = min(batch, 300 - size)
        update = append_tiles(
            size, lambda t: written[t.path], entries=MIRROR_ENTRIES[size : size + n]
        )
        written.update(update.tiles)
        size += n
    assert base64.b64encode(update.root).decode() == MIRROR_ROOT_B64
    assert update.state.root() == update.root
    for path in ("tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1"):
        assert written[path] == (mirror / path).read_bytes(), path


def test_mirror_entry_bundles(mirror: Path) -> None:
    """Our bundles decode back to the 300 entries. The shared bundle files are NOT real
    bundles: they are gzip of placeholder text ("fake mirrored entry bundle"), so they cannot
    match byte for byte; our decoder must reject them as malformed, not misread them."""
    update = append_tiles(0, _no_tiles, entries=MIRROR_ENTRIES)
    full = decode_entry_bundle(update.tiles["tile/entries/000"], 256)
    partial = decode_entry_bundle(update.tiles["tile/entries/001.p/44"], 44)
    assert full + partial == MIRROR_ENTRIES
    assert update.tiles["tile/entries/000"][:10] == b"\x00\x08record 0"
    for path, width in (("tile/entries/000", 256), ("tile/entries/001.p/44", 44)):
        shared = (mirror / path).read_bytes()
        assert gzip.decompress(shared).startswith(b"fake mirrored")
        with pytest.raises(MalformedError):
            decode_entry_bundle(shared, width)
        with pytest.raises(MalformedError):
            decode_entry_bundle(gzip.decompress(shared), width)


def _mirror_reader(mirror: Path, root: bytes | None = None) -> TileHashReader:
    trusted = root if root is not None else base64.b64decode(MIRROR_ROOT_B64)
    return TileHashReader(300, trusted, lambda t: (mirror / t.path).read_bytes())


def test_mirror_proofs_rebuilt_from_tiles(mirror: Path) -> None:
    reader = _mirror_reader(mirror)
    root = base64.b64decode(MIRROR_ROOT_B64)
    store = MemoryHashStore.from_leaf_hashes([leaf_hash(e) for e in MIRROR_ENTRIES])
    assert tree_root(300, reader) == root
    for i in range(300):
        proof = inclusion_proof(i, 300, reader)
        verify_inclusion(leaf_hash(MIRROR_ENTRIES[i]), i, 300, proof, root)
    for m in range(1, 301):
        proof = consistency_proof(m, 300, reader)
        assert proof == consistency_proof(m, 300, store)
        root1 = tree_root(m, reader)
        assert root1 == tree_root(m, store)
        verify_consistency(m, 300, proof, root1, root)
    assert reader.state() == TreeState.from_reader(300, store)


def test_mirror_tampered_tiles_detected(mirror: Path) -> None:
    files = {p: (mirror / p).read_bytes() for p in MIRROR_FILES}
    root = base64.b64decode(MIRROR_ROOT_B64)
    for path in ("tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1"):
        for pos in (0, len(files[path]) // 2, len(files[path]) - 1):
            bad = dict(files)
            bad[path] = files[path][:pos] + bytes([files[path][pos] ^ 1]) + files[path][pos + 1 :]
            reader = TileHashReader(300, root, lambda t, b=bad: b[t.path])  # type: ignore[misc]
            with pytest.raises(InconsistentTreeError):
                for i in range(0, 300, 5):
                    inclusion_proof(i, 300, reader)
        for bad_bytes in (files[path][:-1], files[path] + b"\x00", b""):
            bad = dict(files)
            bad[path] = bad_bytes
            reader = TileHashReader(300, root, lambda t, b=bad: b[t.path])  # type: ignore[misc]
            with pytest.raises(InconsistentTreeError):
                for i in range(0, 300, 5):
                    inclusion_proof(i, 300, reader)
    with pytest.raises(InconsistentTreeError):
        tree_root(300, _mirror_reader(mirror, root=bytes(32)))


# -- paths ----------------------------------------------------------------------------------


def test_spec_examples() -> None:
    assert Tile(0, 1234067).path == "tile/0/x001/x234/067"
    assert EntryBundle(1234067, 3).path == "tile/entries/x001/x234/067.p/3"
    tiles = list(tiles_for_size(70000))
    level0 = [t for t in tiles if t.level == 0]
    assert len([t for t in level0 if t.is_full]) == 273
    assert [t.width for t in level0 if not t.is_full] == [112]
    assert [(t.level, t.width) for t in tiles if t.level > 0] == [(1, 256), (1, 17), (2, 1)]
    assert [t.path for t in tiles_for_size(256)] == ["tile/0/000", "tile/1/000.p/1"]
    assert list(tiles_for_size(0)) == []
    assert [t.path for t in partial_tiles(70000)] == [
        "tile/0/273.p/112",
        "tile/1/001.p/17",
        "tile/2/000.p/1",
    ]


@settings(deadline=None)
@given(
    st.integers(min_value=0, max_value=7),
    st.integers(min_value=0, max_value=2**40),
    st.integers(min_value=1, max_value=256),
)
def test_path_round_trip(level: int, index: int, width: int) -> None:
    try:
        tile = Tile(level, index, width)
    except LimitExceededError:
        assert (index * 256 + width) * 256**level > MAX_TREE_SIZE
        return
    assert parse_path(tile.path) == tile
    bundle = EntryBundle(index, width)
    assert parse_path(bundle.path) == bundle


@pytest.mark.parametrize(
    "args",
    [(-1, 0, 256), (64, 0, 1), (0, -1, 256), (0, 0, 0), (0, 0, 257), (8, 0, 1), (0, 2**63, 1)],
    ids=["neg-level", "level-64", "neg-index", "width-0", "width-257", "level-8", "huge-index"],
)
def test_tile_constructor_validates(args: tuple[int, int, int]) -> None:
    with pytest.raises(MalformedError):
        Tile(*args)


@pytest.mark.parametrize(
    "path",
    [None, b"tile/0/000", "tile/0/000" + "/x000" * 100, "tile/0/000?x=1", "tile/0/000#"],
    ids=["none", "bytes", "too-long", "query", "fragment"],
)
def test_parse_path_rejects(path: object) -> None:
    with pytest.raises(MalformedError):
        parse_path(path)  # type: ignore[arg-type]


def test_changed_tiles_rejects_shrinking() -> None:
    with pytest.raises(MalformedError):
        list(changed_tiles(5, 4))


# -- tile and bundle bytes ------------------------------------------------------------------


def test_tile_bytes_round_trip() -> None:
    hashes = [leaf_hash(b"%d" % i) for i in range(44)]
    data = encode_tile(hashes)
    assert data == b"".join(hashes)
    assert decode_tile(Tile(0, 1, 44), data) == hashes


@pytest.mark.parametrize(
    ("width", "data"),
    [(44, bytes(32 * 43)), (44, bytes(32 * 45)), (44, bytes(32 * 44 + 1)), (256, b""), (1, b"x")],
    ids=["one-hash-short", "one-hash-long", "trailing-byte", "empty", "one-byte"],
)
def test_decode_tile_rejects_wrong_length(width: int, data: bytes) -> None:
    with pytest.raises(MalformedError):
        decode_tile(Tile(0, 0, width), data)


def test_encode_tile_rejects() -> None:
    for bad in ([], [bytes(32)] * 257, [bytes(31)], [bytes(32), bytes(33)], ["x" * 32]):
        with pytest.raises(MalformedError):
            encode_tile(bad)  # type: ignore[arg-type]


@settings(deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=256))
def test_entry_bundle_round_trip(entries: list[bytes]) -> None:
    data = encode_entry_bundle(entries)
    assert len(data) == sum(2 + len(e) for e in entries)
    assert decode_entry_bundle(data) == entries
    assert decode_entry_bundle(data, len(entries)) == entries


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=20), st.data())
def test_entry_bundle_truncation_and_trailing_rejected(
    entries: list[bytes], data: st.DataObject
) -> None:
    raw = encode_entry_bundle(entries)
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    with pytest.raises(MalformedError):
        decode_entry_bundle(raw[:cut], len(entries))
    with pytest.raises(MalformedError):
        decode_entry_bundle(raw + b"\x00", len(entries))


def test_entry_bundle_limits() -> None:
    assert decode_entry_bundle(encode_entry_bundle([b"x" * MAX_ENTRY_SIZE])) == [
        b"x" * MAX_ENTRY_SIZE
    ]
    with pytest.raises(LimitExceededError):
        encode_entry_bundle([b"x" * (MAX_ENTRY_SIZE + 1)])
    with pytest.raises(MalformedError):
        encode_entry_bundle([])
    with pytest.raises(MalformedError):
        encode_entry_bundle([b""] * 257)
    with pytest.raises(MalformedError):
        encode_entry_bundle(["text"])  # type: ignore[list-item]
    with pytest.raises(LimitExceededError):
        decode_entry_bundle(b"\x00\x00" * 257)
    for bad in (b"", b"\x00", b"\xff\xff" + b"x" * 100, b"\x00\x02x"):
        with pytest.raises(MalformedError):
            decode_entry_bundle(bad)
    with pytest.raises(MalformedError):
        decode_entry_bundle(b"\x00\x00" * 3, 2)
    for width in (0, 257, -1):
        with pytest.raises(MalformedError):
            decode_entry_bundle(b"\x00\x00", width)
    with pytest.raises(MalformedError):
        decode_entry_bundle("\x00\x00")  # type: ignore[arg-type]
    assert decode_entry_bundle(struct.pack(">H", 0)) == [b""]


# -- the sequencer's append step ------------------------------------------------------------

ENTRIES = [b"e%d" % i for i in range(70000)]
LEAVES = [leaf_hash(e) for e in ENTRIES]


def _naive_tile_bytes(store: MemoryHashStore, tile: Tile) -> bytes:
    """A tile straight from its definition: hashes of tree level 8L, read from a full store."""
    nodes = [NodeId(8 * tile.level, tile.index * 256 + i) for i in range(tile.width)]
    return b"".join(store.read_hashes(nodes))


def _grow(
    batches: list[int], *, with_entries: bool = True
) -> tuple[dict[str, bytes], list[TreeState]]:
    written: dict[str, bytes] = {}
    states = [TreeState.empty()]
    size = 0
    for n in batches:
        kwargs = (
            {"entries": ENTRIES[size : size + n]}
            if with_entries
            else {"leaf_hashes": LEAVES[size : size + n]}
        )
        update = append_tiles(size, lambda t: written[t.path], **kwargs)  # type: ignore[arg-type]
        assert not set(update.tiles) & set(written) or all(
            written[p] == b for p, b in update.tiles.items() if p in written
        )
        assert update.root == update.state.root()
        written.update(update.tiles)
        size += n
        states.append(update.state)
    return written, states


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=10))
def test_random_batches_write_the_same_tiles_as_one_by_one(batches: list[int]) -> None:
    batches = _cap(batches, 600)
    total = sum(batches)
    batched, states = _grow(batches)
    # Every tile of every checkpointed size in the batched run was also written one by one.
    for path, data in batched.items():
        assert SMALL_TILES[path] == data
    assert states[-1] == SMALL_STATES[total]
    store = MemoryHashStore.from_leaf_hashes(LEAVES[:total])
    for tile in tiles_for_size(total):
        assert batched[tile.path] == _naive_tile_bytes(store, tile)
    for bundle in entry_bundles_for_size(total):
        lo = bundle.index * 256
        got = decode_entry_bundle(batched[bundle.path], bundle.width)
        assert got == ENTRIES[lo : lo + bundle.width]


def _cap(batches: list[int], total: int) -> list[int]:
    out: list[int] = []
    for n in batches:
        out.append(min(n, total - sum(out)))
    return out


def test_large_tree_tiles_and_proofs_from_tiles() -> None:
    """70000 leaves in uneven batches: three tile levels; proofs at every checkpoint size."""
    rnd = random.Random(7)
    batches: list[int] = []
    while sum(batches) < 70000:
        batches.append(min(rnd.choice([1, 3, 255, 256, 1000, 4096, 9999]), 70000 - sum(batches)))
    written, states = _grow(batches)
    store = MemoryHashStore.from_leaf_hashes(LEAVES)
    for tile in tiles_for_size(70000):
        assert written[tile.path] == _naive_tile_bytes(store, tile)
    for state in states[1::3]:
        size, root = state.size, state.root()
        reader = TileHashReader(size, root, lambda t: written[t.path])
        assert tree_root(size, reader) == tree_root(size, store)
        for index in {0, size - 1, size // 2, rnd.randrange(size)}:
            proof = inclusion_proof(index, size, reader)
            assert proof == inclusion_proof(index, size, store)
            verify_inclusion(LEAVES[index], index, size, proof, root)
        for size1 in {1, size, rnd.randint(1, size)}:
            proof = consistency_proof(size1, size, reader)
            assert proof == consistency_proof(size1, size, store)
            verify_consistency(size1, size, proof, tree_root(size1, store), root)


SMALL_TILES, SMALL_STATES = _grow([1] * 600)
SMALL_STORE = MemoryHashStore.from_leaf_hashes(LEAVES[:600])


@settings(deadline=None)
@given(st.data())
def test_proofs_from_tiles_match_stored_hash_proofs(data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=1, max_value=600))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    size1 = data.draw(st.integers(min_value=1, max_value=size))
    root = SMALL_STATES[size].root()
    reader = TileHashReader(size, root, lambda t: SMALL_TILES[t.path])
    proof = inclusion_proof(index, size, reader)
    assert proof == inclusion_proof(index, size, SMALL_STORE)
    verify_inclusion(LEAVES[index], index, size, proof, root)
    cproof = consistency_proof(size1, size, reader)
    assert cproof == consistency_proof(size1, size, SMALL_STORE)
    verify_consistency(size1, size, cproof, SMALL_STATES[size1].root(), root)


def test_leaf_hash_mode_writes_no_bundles() -> None:
    written, states = _grow([300, 5], with_entries=False)
    assert not any(p.startswith("tile/entries/") for p in written)
    assert states[-1].root() == tree_root(305, MemoryHashStore.from_leaf_hashes(LEAVES[:305]))


def test_given_state_gives_same_result() -> None:
    first = append_tiles(0, _no_tiles, entries=ENTRIES[:300])

    def read(t: Tile | EntryBundle) -> bytes:
        return first.tiles[t.path]

    a = append_tiles(300, read, entries=ENTRIES[300:700])
    b = append_tiles(300, read, entries=ENTRIES[300:700], state=first.state)
    assert a == b
    with pytest.raises(MalformedError):
        append_tiles(301, read, entries=ENTRIES[300:700], state=first.state)


@pytest.mark.parametrize("size", [1, 44, 256, 300, 512, 640, 65536 + 256, 70000])
def test_given_state_that_contradicts_the_tiles_is_refused(size: int) -> None:
    """A persisted state of the right size but another tree (stale database, restored backup)
    must not be extended over tiles it does not describe: the new root would contradict them."""
    leaves = [leaf_hash(b"%d" % i) for i in range(size)]
    stored = append_tiles(0, _no_tiles, leaf_hashes=leaves).tiles
    other, _ = TreeState.empty().append([leaf_hash(b"other %d" % i) for i in range(size)])
    with pytest.raises(InconsistentTreeError):
        append_tiles(size, lambda t: stored[t.path], leaf_hashes=[leaf_hash(b"x")], state=other)
    good, _ = TreeState.empty().append(leaves)
    update = append_tiles(size, lambda t: stored[t.path], leaf_hashes=[leaf_hash(b"x")], state=good)
    assert update.state.size == size + 1


def test_append_tiles_rejects_bad_input() -> None:
    with pytest.raises(MalformedError):
        append_tiles(0, _no_tiles)
    with pytest.raises(MalformedError):
        append_tiles(0, _no_tiles, entries=[b"x"], leaf_hashes=[bytes(32)])
    with pytest.raises(LimitExceededError):
        append_tiles(0, _no_tiles, entries=[b"x" * (MAX_ENTRY_SIZE + 1)])
    with pytest.raises(MalformedError):
        append_tiles(0, _no_tiles, entries=["text"])  # type: ignore[list-item]
    with pytest.raises(MalformedError):
        append_tiles(-1, _no_tiles, entries=[b"x"])
    with pytest.raises(MalformedError):
        append_tiles(0, _no_tiles, leaf_hashes=[bytes(31)])


def test_append_tiles_detects_inconsistent_storage() -> None:
    first = append_tiles(0, _no_tiles, entries=ENTRIES[:300])
    stored = dict(first.tiles)
    stored["tile/entries/001.p/44"] = encode_entry_bundle([b"other"] * 44)
    with pytest.raises(InconsistentTreeError):
        append_tiles(300, lambda t: stored[t.path], entries=[b"next"])
    stored = dict(first.tiles)
    stored["tile/0/001.p/44"] = stored["tile/0/001.p/44"][:-1]
    with pytest.raises(InconsistentTreeError):
        append_tiles(300, lambda t: stored[t.path], entries=[b"next"])
    stored = dict(first.tiles)
    stored["tile/entries/001.p/44"] = b"\x00"
    with pytest.raises(InconsistentTreeError):
        append_tiles(300, lambda t: stored[t.path], entries=[b"next"])


def test_reader_rejects_nodes_outside_the_tree() -> None:
    reader = TileHashReader(300, SMALL_STATES[300].root(), lambda t: SMALL_TILES[t.path])
    for node in (NodeId(0, 300), NodeId(9, 0), NodeId(70, 0), NodeId(-1, 0)):
        with pytest.raises(MalformedError):
            reader.read_hashes([node])
    with pytest.raises(MalformedError):
        TileHashReader(300, b"short", lambda t: b"")
