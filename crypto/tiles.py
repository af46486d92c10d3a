"""C2SP tlog-tiles: tile paths, tile and entry-bundle bytes, which tiles exist, how to write them.

Normative text: specs/tiles.md, following https://c2sp.org/tlog-tiles (tile height 8). A tile at
level L, index N holds up to 256 consecutive hashes of tree level 8*L starting at hash 256*N; an
entry bundle holds the entries behind the level-0 tile with the same N. Paths are relative to the
log prefix: ``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``.

Everything here is pure: tile storage is reached through callables the caller passes in.
:func:`append_tiles` is what the sequencer runs per batch; :class:`TileHashReader` is the
:class:`~crypto.merkle.HashReader` a verifier builds over fetched tiles, authenticating every
tile against a trusted (size, root) before using any hash from it.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from crypto.errors import (
    InconsistentTreeError,
    LimitExceededError,
    MalformedError,
)
from crypto.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_TREE_SIZE,
    NodeId,
    check_size,
    pair_hashes,
)
from crypto.tree_state import TreeState

__all__ = [
    "MAX_ENTRY_SIZE",
    "MAX_PATH_LENGTH",
    "MAX_TILE_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "EntryBundle",
    "Tile",
    "TileAppender",
    "TileHashReader",
    "TileUpdate",
    "append_tiles",
    "changed_tiles",
    "decode_entry_bundle",
    "decode_tile",
    "encode_entry_bundle",
    "encode_tile",
    "entry_bundles_for_size",
    "parse_path",
    "partial_tile_frontier",
    "partial_tiles",
    "tile_levels",
    "tiles_for_size",
]

TILE_HEIGHT = 8
"""Tree levels per tile level (C2SP tlog-tiles fixes 8)."""
TILE_WIDTH = 1 << TILE_HEIGHT
"""Hashes in a full tile, entries in a full bundle: 256."""
MAX_TILE_LEVEL = 63
"""Largest tile level a path may name (tlog-tiles: L is 0..63)."""
MAX_ENTRY_SIZE = 0xFFFF
"""Largest entry an entry bundle can carry: its length prefix is a big-endian uint16."""
MAX_PATH_LENGTH = 128
"""Longest tile path parsed; the longest valid one is far shorter."""

_sha256 = hashlib.sha256
_U16 = struct.Struct(">H")
_PATH_RE = re.compile(
    r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/)*)([0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?"
)


def _format_index(index: int) -> str:
    """N as zero-padded 3-digit groups, all but the last prefixed with x: x001/x234/067."""
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def _suffix(width: int) -> str:
    return "" if width == TILE_WIDTH else f".p/{width}"


def _check_width(width: object) -> int:
    if not isinstance(width, int) or isinstance(width, bool) or not 1 <= width <= TILE_WIDTH:
        raise MalformedError(f"a tile width must be an integer from 1 to {TILE_WIDTH}")
    return width


@dataclass(frozen=True, slots=True)
class Tile:
    """Hash tile ``tile/<level>/<index>[.p/<width>]``; width 256 means a full tile.

    It holds the hashes of tree level ``8*level`` with indexes
    ``[256*index, 256*index + width)``.
    """

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if (
            not isinstance(self.level, int)
            or isinstance(self.level, bool)
            or not 0 <= self.level <= MAX_TILE_LEVEL
        ):
            raise MalformedError(f"a tile level must be an integer from 0 to {MAX_TILE_LEVEL}")
        check_size(self.index, "tile index")
        _check_width(self.width)
        if (self.index * TILE_WIDTH + self.width) << (TILE_HEIGHT * self.level) > MAX_TREE_SIZE:
            raise LimitExceededError("tile lies beyond the largest supported tree size")

    @property
    def path(self) -> str:
        """The tile's path below the log prefix."""
        return f"tile/{self.level}/{_format_index(self.index)}{_suffix(self.width)}"

    @property
    def is_full(self) -> bool:
        """Whether the tile has all 256 hashes (and so never changes)."""
        return self.width == TILE_WIDTH


@dataclass(frozen=True, slots=True)
class EntryBundle:
    """Entry bundle ``tile/entries/<index>[.p/<width>]``: entries ``[256*index, +width)``."""

    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        check_size(self.index, "entry bundle index")
        _check_width(self.width)
        if self.index * TILE_WIDTH + self.width > MAX_TREE_SIZE:
            raise LimitExceededError("entry bundle lies beyond the largest supported tree size")

    @property
    def path(self) -> str:
        """The bundle's path below the log prefix."""
        return f"tile/entries/{_format_index(self.index)}{_suffix(self.width)}"

    @property
    def is_full(self) -> bool:
        """Whether the bundle has all 256 entries (and so never changes)."""
        return self.width == TILE_WIDTH


def parse_path(path: str) -> Tile | EntryBundle:
    """Parse a tile or entry-bundle path (without the log prefix), accepting only the
    canonical spelling, so that one resource has exactly one name."""
    if not isinstance(path, str):
        raise MalformedError("a tile path must be text")
    if len(path) > MAX_PATH_LENGTH:
        raise LimitExceededError(f"a tile path has at most {MAX_PATH_LENGTH} characters")
    match = _PATH_RE.fullmatch(path)
    if match is None:
        raise MalformedError(
            "not a tile path: expected tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>] with N "
            "in 3-digit groups like x001/x234/067"
        )
    level_text, prefix_groups, last_group, width_text = match.groups()
    groups = [g[1:] for g in prefix_groups.split("/") if g]
    if groups and groups[0] == "000":
        raise MalformedError("a tile index must not start with a zero group (x000/...)")
    index = int("".join([*groups, last_group]))
    width = TILE_WIDTH
    if width_text is not None:
        width = int(width_text)
        if width >= TILE_WIDTH:
            raise MalformedError("a partial tile width must be from 1 to 255")
    if level_text == "entries":
        return EntryBundle(index, width)
    return Tile(int(level_text), index, width)


# -- which tiles exist ----------------------------------------------------------------------


def _count_at(size: int, level: int) -> int:
    """Number of hashes a tree of ``size`` has at tile level ``level`` (tree level 8*level)."""
    return size >> (TILE_HEIGHT * level)


def tiles_for_size(size: int) -> Iterator[Tile]:
    """Every tile a tree of ``size`` leaves has, level 0 first, full tiles then the partial one.

    A generator: a large tree has millions of tiles.
    """
    check_size(size, "tree size")
    level = 0
    while (count := _count_at(size, level)) > 0:
        for index in range(count >> TILE_HEIGHT):
            yield Tile(level, index)
        if count % TILE_WIDTH:
            yield Tile(level, count >> TILE_HEIGHT, count % TILE_WIDTH)
        level += 1


def entry_bundles_for_size(size: int) -> Iterator[EntryBundle]:
    """Every entry bundle a log of ``size`` entries has, full ones then the partial one."""
    check_size(size, "tree size")
    for index in range(size >> TILE_HEIGHT):
        yield EntryBundle(index)
    if size % TILE_WIDTH:
        yield EntryBundle(size >> TILE_HEIGHT, size % TILE_WIDTH)


def partial_tiles(size: int) -> list[Tile]:
    """The partial tile of each level that has one (the right edge); at most 8 tiles.

    Their hashes determine the root, so they are what a verifier checks first.
    """
    check_size(size, "tree size")
    out: list[Tile] = []
    level = 0
    while (count := _count_at(size, level)) > 0:
        if count % TILE_WIDTH:
            out.append(Tile(level, count >> TILE_HEIGHT, count % TILE_WIDTH))
        level += 1
    return out


def _changed_at(old: int, new: int) -> Iterator[tuple[int, int, int]]:
    """(index, old width, new width) of each tile whose content grows from count old to new."""
    if new <= old:
        return
    for index in range(old >> TILE_HEIGHT, ((new - 1) >> TILE_HEIGHT) + 1):
        base = index * TILE_WIDTH
        yield index, max(0, min(TILE_WIDTH, old - base)), min(TILE_WIDTH, new - base)


def changed_tiles(old_size: int, new_size: int) -> Iterator[Tile]:
    """The tiles (at their new width) that growing the tree from old_size to new_size writes."""
    check_size(old_size, "old tree size")
    check_size(new_size, "new tree size")
    if old_size > new_size:
        raise MalformedError("a tree only grows: the old size must not exceed the new size")
    level = 0
    while _count_at(new_size, level) > 0:
        for index, _, width in _changed_at(_count_at(old_size, level), _count_at(new_size, level)):
            yield Tile(level, index, width)
        level += 1


# -- tile and bundle bytes ------------------------------------------------------------------


def encode_tile(hashes: Sequence[bytes]) -> bytes:
    """Tile bytes: the hashes concatenated (1 to 256 of them, 32 bytes each)."""
    if not 1 <= len(hashes) <= TILE_WIDTH:
        raise MalformedError(f"a tile holds 1 to {TILE_WIDTH} hashes, got {len(hashes)}")
    if not set(map(type, hashes)) <= {bytes} or not set(map(len, hashes)) <= {HASH_SIZE}:
        raise MalformedError(f"every hash in a tile must be {HASH_SIZE} bytes")
    return b"".join(hashes)


def decode_tile(tile: Tile, data: bytes) -> list[bytes]:
    """The hashes in the bytes of ``tile``; its length must be exactly width * 32."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedError("tile data must be bytes")
    data = bytes(data)
    if len(data) != tile.width * HASH_SIZE:
        raise MalformedError(
            f"tile {tile.path} must be {tile.width * HASH_SIZE} bytes, got {len(data)}"
        )
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Bundle bytes: each entry as a big-endian uint16 length then its bytes (1..256 entries)."""
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise MalformedError(f"an entry bundle holds 1 to {TILE_WIDTH} entries, got {len(entries)}")
    parts: list[bytes] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, bytes):
            raise MalformedError(f"entry {i} must be bytes")
        if len(entry) > MAX_ENTRY_SIZE:
            raise LimitExceededError(f"entry {i} is longer than {MAX_ENTRY_SIZE} bytes")
        parts.append(_U16.pack(len(entry)))
        parts.append(entry)
    return b"".join(parts)


def decode_entry_bundle(data: bytes, width: int | None = None) -> list[bytes]:
    """The entries in bundle bytes; exactly ``width`` of them when given, no trailing bytes."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedError("entry bundle data must be bytes")
    if width is not None:
        _check_width(width)
    data = bytes(data)
    entries: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end:
        if len(entries) == TILE_WIDTH:
            raise LimitExceededError(f"an entry bundle holds at most {TILE_WIDTH} entries")
        if end - pos < 2:
            raise MalformedError(
                f"entry bundle truncated inside the length of entry {len(entries)}"
            )
        (length,) = _U16.unpack_from(data, pos)
        pos += 2
        if end - pos < length:
            raise MalformedError(f"entry bundle truncated inside entry {len(entries)}")
        entries.append(data[pos : pos + length])
        pos += length
    if not entries:
        raise MalformedError("an entry bundle holds at least one entry")
    if width is not None and len(entries) != width:
        raise MalformedError(f"entry bundle must hold {width} entries, got {len(entries)}")
    return entries


# -- frontier from partial tiles ------------------------------------------------------------


def tile_levels(hashes: list[bytes]) -> list[list[bytes]]:
    """The hashes of every complete subtree inside one tile: levels[r][i] is the node of
    ``2**r`` tile hashes starting at tile position ``i * 2**r``."""
    levels = [hashes]
    cur = hashes
    while len(cur) > 1:
        cur = pair_hashes(cur)
        levels.append(cur)
    return levels


def partial_tile_frontier(width: int, levels: list[list[bytes]]) -> list[bytes]:
    """Frontier hashes contributed by a partial tile of this width, largest first."""
    out: list[bytes] = []
    offset = 0
    for bit in range(TILE_HEIGHT - 1, -1, -1):
        if width >> bit & 1:
            out.append(levels[bit][offset >> bit])
            offset += 1 << bit
    return out


def _state_from_partials(size: int, partial_hashes: dict[int, list[bytes]]) -> TreeState:
    """The frontier of ``size`` from the hashes of its partial tiles, keyed by tile level."""
    frontier: list[bytes] = []
    for level in sorted(partial_hashes, reverse=True):
        frontier.extend(
            partial_tile_frontier(len(partial_hashes[level]), tile_levels(partial_hashes[level]))
        )
    return TreeState(size, tuple(frontier))


def _check_state_edge(size: int, state: TreeState, partial: dict[int, list[bytes]]) -> None:
    """Check a persisted state against the stored tiles at its right edge, cheaply.

    The smallest frontier node covers the last ``2**(tz % 8)`` hashes of one partial tile
    (tz = trailing zero bits of the size), so comparing it costs under 128 hashes and about
    one on average, instead of the up to 2000 a full recovery from tiles would.
    """
    tz = (size & -size).bit_length() - 1
    level, sub = divmod(tz, TILE_HEIGHT)
    hashes = partial[level][-(1 << sub) :]
    while len(hashes) > 1:
        hashes = pair_hashes(hashes)
    if hashes[0] != state.frontier[-1]:
        raise InconsistentTreeError("the given tree state does not match the stored tiles")


# -- the sequencer's write step -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TileUpdate:
    """What one append writes: ``tiles`` maps path to bytes in a safe write order (entry
    bundles, then hash tiles from level 0 up), then the new state and root to sign."""

    state: TreeState
    root: bytes
    tiles: dict[str, bytes]


ReadTile = Callable[[Tile | EntryBundle], bytes]


def _read_partial_hashes(size: int, read_tile: ReadTile) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    for tile in partial_tiles(size):
        try:
            out[tile.level] = decode_tile(tile, read_tile(tile))
        except MalformedError as exc:
            raise InconsistentTreeError(f"stored tile {tile.path} is malformed: {exc}") from exc
    return out


def append_tiles(
    old_size: int,
    read_tile: ReadTile,
    *,
    entries: Sequence[bytes] | None = None,
    leaf_hashes: Sequence[bytes] | None = None,
    state: TreeState | None = None,
) -> TileUpdate:
    """Every tile and entry bundle that appending to a tree of ``old_size`` writes.

    Give ``entries`` (hashed here, and bundled) or ``leaf_hashes`` (hash tiles only).
    ``read_tile`` returns the bytes of an existing tile or bundle; it is called only for the
    partial tiles (and partial bundle) at the right edge of the old tree. ``state``, when the
    caller persists it, saves rehashing those partial tiles to recover the frontier.
    """
    check_size(old_size, "old tree size")
    if (entries is None) == (leaf_hashes is None):
        raise MalformedError("give exactly one of entries or leaf_hashes")
    if entries is not None:
        if not set(map(type, entries)) <= {bytes}:
            raise MalformedError("every entry must be bytes")
        if entries and max(map(len, entries)) > MAX_ENTRY_SIZE:
            raise LimitExceededError(f"an entry is longer than {MAX_ENTRY_SIZE} bytes")
        sha = _sha256
        leaves: Sequence[bytes] = [sha(b"\x00" + e).digest() for e in entries]
    elif leaf_hashes is not None:
        leaves = leaf_hashes
    if state is not None and state.size != old_size:
        raise MalformedError("the given tree state is not of the old tree size")

    partial = _read_partial_hashes(old_size, read_tile)
    if state is None:
        state = _state_from_partials(old_size, partial)
    elif old_size:
        _check_state_edge(old_size, state, partial)
    new_state, completed = state.append(leaves)
    new_size = new_state.size
    out: dict[str, bytes] = {}

    if entries is not None and entries:
        old_bundle = b""
        if old_size % TILE_WIDTH:
            bundle = EntryBundle(old_size >> TILE_HEIGHT, old_size % TILE_WIDTH)
            old_bundle = read_tile(bundle)
            try:
                old_entries = decode_entry_bundle(old_bundle, bundle.width)
            except MalformedError as exc:
                raise InconsistentTreeError(
                    f"stored entry bundle {bundle.path} is malformed: {exc}"
                ) from exc
            # One hash, not 255 per batch: the last entry must be the last leaf of the tile.
            if _sha256(b"\x00" + old_entries[-1]).digest() != partial[0][-1]:
                raise InconsistentTreeError(
                    f"entry bundle {bundle.path} does not match its level-0 tile"
                )
        for index, w_old, w_new in _changed_at(old_size, new_size):
            lo = index * TILE_WIDTH + w_old - old_size
            hi = index * TILE_WIDTH + w_new - old_size
            head = bytes(old_bundle) if w_old else b""
            out[EntryBundle(index, w_new).path] = head + encode_entry_bundle(entries[lo:hi])

    level = 0
    while (new_count := _count_at(new_size, level)) > 0:
        old_count = _count_at(old_size, level)
        tree_level = TILE_HEIGHT * level
        fresh = completed.levels[tree_level] if tree_level < len(completed.levels) else []
        for index, w_old, w_new in _changed_at(old_count, new_count):
            lo = index * TILE_WIDTH + w_old - old_count
            hi = index * TILE_WIDTH + w_new - old_count
            tile_head = b"".join(partial[level]) if w_old else b""
            out[Tile(level, index, w_new).path] = tile_head + b"".join(fresh[lo:hi])
        level += 1
    return TileUpdate(new_state, new_state.root(), out)


_SUFFIXES = ("", *(f".p/{w}" for w in range(1, TILE_WIDTH)), "")
"""Path suffix by tile width: ``.p/<W>`` for a partial tile, nothing for a full one."""


def _tile_prefix(level: int, index: int) -> str:
    """Path of a tile without its ``.p/<W>`` suffix (not validated: the caller's size is)."""
    return f"tile/{level}/{_format_index(index)}"


def _bundle_prefix(index: int) -> str:
    """Path of an entry bundle without its ``.p/<W>`` suffix."""
    return f"tile/entries/{_format_index(index)}"


class TileAppender:
    """The sequencer's write step kept in memory: append one entry at O(1) amortised hashes.

    Why: :func:`append_tiles` is stateless, so every call reads and decodes the partial tiles
    and bundle at the right edge, rewrites them and folds the root: hundreds of hashes' worth
    of work per call, fine for a batch but about 0.004x raw SHA-256 when the batch is one
    leaf. This object holds what those calls re-derive (the frontier, the bytes of each
    partial tile and of the partial bundle), so :meth:`append` hashes the leaf and the nodes it
    completes (one on average), copies only the tiles that change, and folds the root only
    when :meth:`root` is asked for.

    Every append returns ``{path: bytes}`` exactly as :func:`append_tiles` would for the same
    entries (same paths, same bytes, same write order); :meth:`root` and :meth:`state` equal
    its ``root`` and ``state``. The object is mutable, held by its caller, and does no I/O: a
    failed call (bad entry, full tree) raises before changing anything.
    """

    __slots__ = ("_bundle", "_bundle_prefix", "_frontier", "_prefixes", "_root", "_size", "_tiles")

    def __init__(self) -> None:
        """An appender for an empty log; use :meth:`from_tiles` to continue a stored one."""
        self._size = 0
        self._frontier: list[bytes] = []  # TreeState.frontier, largest subtree first
        self._tiles: list[bytes] = []  # bytes of the partial tile of each tile level
        self._prefixes: list[str] = []  # path of that level's current tile, without .p/W
        self._bundle = b""  # bytes of the partial entry bundle
        self._bundle_prefix = ""  # path of the current bundle, without .p/W
        self._root: bytes | None = None
        self._load(TreeState.empty(), b"", {})

    @classmethod
    def from_tiles(
        cls, size: int, read_tile: ReadTile, *, state: TreeState | None = None
    ) -> TileAppender:
        """Continue a stored log of ``size`` entries from its right edge, checked as
        :func:`append_tiles` checks it (at most 8 partial tiles and one partial bundle read)."""
        check_size(size, "tree size")
        if state is not None and state.size != size:
            raise MalformedError("the given tree state is not of the tree size")
        partial = _read_partial_hashes(size, read_tile)
        if state is None:
            state = _state_from_partials(size, partial)
        elif size:
            _check_state_edge(size, state, partial)
        bundle = b""
        if size % TILE_WIDTH:
            tile = EntryBundle(size >> TILE_HEIGHT, size % TILE_WIDTH)
            bundle = read_tile(tile)
            try:
                last = decode_entry_bundle(bundle, tile.width)[-1]
            except MalformedError as exc:
                raise InconsistentTreeError(
                    f"stored entry bundle {tile.path} is malformed: {exc}"
                ) from exc
            if _sha256(b"\x00" + last).digest() != partial[0][-1]:
                raise InconsistentTreeError(f"entry bundle {tile.path} does not match its tile")
        out = cls()
        out._load(state, bytes(bundle), {lvl: b"".join(h) for lvl, h in partial.items()})
        return out

    def _load(self, state: TreeState, bundle: bytes, partial: dict[int, bytes]) -> None:
        """Take over a checked state with the bytes of its partial bundle and tiles."""
        size = state.size
        self._size = size
        self._frontier = list(state.frontier)
        self._root = None
        self._bundle = bundle
        self._bundle_prefix = _bundle_prefix(size >> TILE_HEIGHT)
        self._tiles = []
        self._prefixes = []
        level = 0
        while (count := _count_at(size, level)) > 0 or level == 0:
            self._tiles.append(partial.get(level, b""))
            self._prefixes.append(_tile_prefix(level, count >> TILE_HEIGHT))
            level += 1

    def copy(self) -> TileAppender:
        """An independent appender at the same point (the held bytes are immutable and shared),
        e.g. to try a round and keep the old edge if writing its tiles fails."""
        out = TileAppender.__new__(TileAppender)
        out._size, out._root = self._size, self._root
        out._frontier, out._tiles = list(self._frontier), list(self._tiles)
        out._prefixes = list(self._prefixes)
        out._bundle, out._bundle_prefix = self._bundle, self._bundle_prefix
        return out

    @property
    def size(self) -> int:
        """Entries appended so far (the tree size)."""
        return self._size

    def root(self) -> bytes:
        """MTH of the tree: popcount(size) - 1 hashes, computed once per size."""
        if self._root is None:
            frontier = self._frontier
            if not frontier:
                return EMPTY_ROOT
            acc = frontier[-1]
            for value in reversed(frontier[:-1]):
                acc = _sha256(b"\x01" + value + acc).digest()
            self._root = acc
        return self._root

    def state(self) -> TreeState:
        """The tree state to persist (the same value :func:`append_tiles` returns)."""
        return TreeState(self._size, tuple(self._frontier))

    def append(self, entry: bytes) -> dict[str, bytes]:
        """Append one entry; return the bundle and tiles it changes, in write order."""
        if type(entry) is not bytes:
            raise MalformedError("every entry must be bytes")
        length = len(entry)
        if length > MAX_ENTRY_SIZE:
            raise LimitExceededError(f"an entry is longer than {MAX_ENTRY_SIZE} bytes")
        n = self._size
        if n >= MAX_TREE_SIZE:
            raise LimitExceededError("appending would exceed the largest supported tree size")
        sha = _sha256
        node = sha(b"\x00" + entry).digest()
        bundle = self._bundle + (length.to_bytes(2, "big") + entry)
        tile = self._tiles[0] + node
        self._size = n + 1
        self._root = None
        low = n & 0xFF
        if low != 0xFF:
            # 255 times in 256: only the partial bundle and level-0 tile grow, and the new
            # leaf merges with the frontier's smallest hashes, one per trailing 1 bit of n.
            self._bundle = bundle
            self._tiles[0] = tile
            frontier = self._frontier
            for _ in range((n ^ (n + 1)).bit_length() - 1):
                node = sha(b"\x01" + frontier.pop() + node).digest()
            frontier.append(node)
            suffix = _SUFFIXES[low + 1]
            return {self._bundle_prefix + suffix: bundle, self._prefixes[0] + suffix: tile}
        out = {self._bundle_prefix: bundle}
        self._bundle = b""
        self._bundle_prefix = _bundle_prefix((n >> TILE_HEIGHT) + 1)
        self._complete(n, node, tile, out)
        return out

    def _complete(self, n: int, node: bytes, tile: bytes, out: dict[str, bytes]) -> None:
        """Leaf ``n`` fills its level-0 tile: write it full and carry its root upward."""
        sha = _sha256
        frontier, tiles, prefixes = self._frontier, self._tiles, self._prefixes
        m = n  # bits of the old size from the current node's tree level up
        level = 0  # tile level of the current node
        while True:
            width = len(tile) >> 5
            if width == TILE_WIDTH:
                out[prefixes[level]] = tile
                tiles[level] = b""
                prefixes[level] = _tile_prefix(level, (n >> (TILE_HEIGHT * (level + 1))) + 1)
            else:
                out[prefixes[level] + _SUFFIXES[width]] = tile
                tiles[level] = tile
            # The node's left siblings are the frontier's smallest hashes: one per set low bit.
            for _ in range(TILE_HEIGHT):
                if not m & 1:
                    break
                node = sha(b"\x01" + frontier.pop() + node).digest()
                m >>= 1
            else:
                # Eight merges: the node is the root of a full tile, a hash of the level above.
                level += 1
                if level == len(tiles):
                    tiles.append(b"")
                    prefixes.append(_tile_prefix(level, 0))
                tile = tiles[level] + node
                continue
            break
        frontier.append(node)

    def extend(self, entries: Sequence[bytes]) -> dict[str, bytes]:
        """Append a batch; return its bundles and tiles (batched hashing, as append_tiles)."""
        bundle, tiles = self._bundle, self._tiles

        def read(tile: Tile | EntryBundle) -> bytes:
            return bundle if isinstance(tile, EntryBundle) else tiles[tile.level]

        update = append_tiles(self._size, read, entries=entries, state=self.state())
        size = update.state.size
        partial: dict[int, bytes] = {}
        for tile in partial_tiles(size):
            got = update.tiles.get(tile.path)
            partial[tile.level] = got if got is not None else tiles[tile.level]
        if size % TILE_WIDTH:
            path = EntryBundle(size >> TILE_HEIGHT, size % TILE_WIDTH).path
            bundle = update.tiles.get(path, bundle)
        self._load(update.state, bundle if size % TILE_WIDTH else b"", partial)
        self._root = update.root
        return update.tiles


# -- reading a tree back from tiles ---------------------------------------------------------


FetchTile = Callable[[Tile], bytes]


class TileHashReader:
    """A HashReader over tiles of a tree whose (size, root) the caller trusts.

    Before any hash from a tile is used, the tile is authenticated: the partial tiles at the
    right edge must recompute the trusted root, and each full tile must hash to its entry in
    the (authenticated) tile above it. Any mismatch or malformed tile raises
    InconsistentTreeError. Authenticated tiles are cached for the life of the reader.
    """

    def __init__(self, size: int, root: bytes, fetch_tile: FetchTile) -> None:
        self.size = check_size(size, "tree size")
        if not isinstance(root, bytes) or len(root) != HASH_SIZE:
            raise MalformedError(f"the trusted root must be {HASH_SIZE} bytes")
        self.root = root
        self._fetch = fetch_tile
        self._verified: dict[tuple[int, int], list[list[bytes]]] = {}
        self._state: TreeState | None = None

    def _fetch_hashes(self, tile: Tile) -> list[bytes]:
        data = self._fetch(tile)
        try:
            return decode_tile(tile, data)
        except MalformedError as exc:
            raise InconsistentTreeError(f"tile {tile.path} is malformed: {exc}") from exc

    def state(self) -> TreeState:
        """The frontier of the trusted tree, from its partial tiles, checked against the root."""
        if self._state is None:
            partial = {t.level: self._fetch_hashes(t) for t in partial_tiles(self.size)}
            state = _state_from_partials(self.size, partial)
            if state.root() != self.root:
                raise InconsistentTreeError(
                    "the partial tiles at the right edge do not hash to the trusted root"
                )
            for level, hashes in partial.items():
                index = _count_at(self.size, level) >> TILE_HEIGHT
                self._verified[(level, index)] = tile_levels(hashes)
            self._state = state
        return self._state

    def _tile_width(self, level: int, index: int) -> int:
        return min(TILE_WIDTH, _count_at(self.size, level) - index * TILE_WIDTH)

    def _levels(self, level: int, index: int) -> list[list[bytes]]:
        """In-tile subtree hashes of an authenticated tile."""
        key = (level, index)
        cached = self._verified.get(key)
        if cached is not None:
            return cached
        self.state()
        cached = self._verified.get(key)
        if cached is not None:
            return cached
        width = self._tile_width(level, index)
        if width < TILE_WIDTH:
            # Partial tiles are the right edge, authenticated (and cached) by state().
            raise InconsistentTreeError(f"tile ({level}, {index}) is outside the tree")
        tile = Tile(level, index, width)
        # Only the right-edge tiles are partial, and state() authenticated those.
        levels = tile_levels(self._fetch_hashes(tile))
        parent = self._levels(level + 1, index >> TILE_HEIGHT)
        if levels[TILE_HEIGHT][0] != parent[0][index % TILE_WIDTH]:
            raise InconsistentTreeError(
                f"tile {tile.path} does not match its hash in the tile above it"
            )
        self._verified[key] = levels
        return levels

    def read_hashes(self, nodes: Sequence[NodeId]) -> list[bytes]:
        """HashReader: hashes of complete subtrees, each read from an authenticated tile."""
        out: list[bytes] = []
        for level, index in nodes:
            check_size(level, "node level")
            check_size(index, "node index")
            if level > 64 or (index + 1) << level > self.size:
                raise MalformedError(f"node ({level}, {index}) is not complete in the tree")
            tile_level, sub = divmod(level, TILE_HEIGHT)
            first = index << sub  # index of the node's first hash at tree level 8*tile_level
            levels = self._levels(tile_level, first >> TILE_HEIGHT)
            out.append(levels[sub][(first % TILE_WIDTH) >> sub])
        return out
