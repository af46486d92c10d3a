"""Proof hashes from the hub's own tiles, each tile authenticated once per process.

Why: a fresh ``crypto.tiles.TileHashReader`` per request authenticates every tile it touches
(the right-edge partial tiles against the checkpoint root, each full tile against its hash in
the tile above): about 660 SHA-256 per inclusion proof. But a full tile never changes once
written, and the right edge only changes when a new checkpoint is published. So this cache
keeps, per process, the authenticated right edge of the last few published checkpoints and a
bounded LRU of authenticated full tiles with their in-tile subtree hashes. A warm proof then
hashes nothing but the few nodes RFC 9162 combines; a miss costs one tile read and 255 hashes.

Soundness: a full tile authenticated against any checkpoint of this log holds the same hashes
in every later checkpoint (append-only; the sequencer checks each round's tiles against the
tree state). Tiles still come from the hub's tile store only, never from a request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from crypto.errors import InconsistentTreeError, MalformedError
from crypto.merkle import HASH_SIZE, NodeId, pair_hashes
from crypto.tiles import TILE_HEIGHT, TILE_WIDTH, Tile, TileHashReader, decode_tile

__all__ = ["DEFAULT_MAX_FULL_TILES", "CachedReader", "TileCache"]

DEFAULT_MAX_FULL_TILES = 1024
"""Full tiles kept (16 KiB each: the tile and its 255 inner hashes), 16 MiB in all: every
level-0 tile of a 262,144-entry log, and the hot upper tiles of any larger one."""
FetchTile = Callable[[Tile], bytes]
_EDGES = 4  # right edges kept: the current checkpoint and a few recent ones

Levels = tuple[bytes, ...]
"""levels[r] = the 2**(8-r) ... hashes of complete subtrees of 2**r tile hashes, concatenated."""


def _levels(hashes: list[bytes]) -> Levels:
    out = [b"".join(hashes)]
    level = hashes
    while len(level) > 1:
        level = pair_hashes(level)
        out.append(b"".join(level))
    return tuple(out)


class TileCache:
    """Per-process cache of authenticated tiles; :meth:`reader` gives a HashReader for one
    published checkpoint. Thread-safe (FastAPI runs sync routes in a thread pool)."""

    def __init__(self, fetch: FetchTile, max_full_tiles: int = DEFAULT_MAX_FULL_TILES) -> None:
        if max_full_tiles < 1:
            raise ValueError("max_full_tiles must be at least 1")
        self._fetch = fetch
        self._max = max_full_tiles
        self._lock = threading.Lock()
        self._full: OrderedDict[tuple[int, int], Levels] = OrderedDict()
        self._edges: OrderedDict[tuple[int, bytes], TileHashReader] = OrderedDict()

    def reader(self, size: int, root: bytes) -> CachedReader:
        """A HashReader for the tree (size, root), which the caller trusts (the published
        checkpoint); raises InconsistentTreeError if the right-edge tiles do not hash to it."""
        key = (size, root)
        with self._lock:
            edge = self._edges.get(key)
            if edge is not None:
                self._edges.move_to_end(key)
        if edge is None:
            edge = TileHashReader(size, root, self._fetch)
            edge.state()  # authenticates (and keeps) the partial tiles at the right edge
            with self._lock:
                self._edges[key] = edge
                while len(self._edges) > _EDGES:
                    self._edges.popitem(last=False)
        return CachedReader(self, size, edge)

    def full_tiles_cached(self) -> int:
        """How many full tiles are held (for tests and benchmarks)."""
        with self._lock:
            return len(self._full)

    def _full_levels(self, reader: CachedReader, level: int, index: int) -> Levels:
        key = (level, index)
        with self._lock:
            hit = self._full.get(key)
            if hit is not None:
                self._full.move_to_end(key)
                return hit
        tile = Tile(level, index, TILE_WIDTH)
        try:
            hashes = decode_tile(tile, self._fetch(tile))
        except MalformedError as exc:
            raise InconsistentTreeError(f"tile {tile.path} is malformed: {exc}") from exc
        levels = _levels(hashes)
        # Its root must be its entry in the tile above (full: cached or authenticated now;
        # partial: authenticated with the right edge).
        if levels[TILE_HEIGHT] != reader.node(TILE_HEIGHT * (level + 1), index):
            raise InconsistentTreeError(f"tile {tile.path} does not match the tile above it")
        with self._lock:
            self._full[key] = levels
            while len(self._full) > self._max:
                self._full.popitem(last=False)
        return levels


class CachedReader:
    """HashReader over one published tree: right-edge nodes from its authenticated edge,
    every other node from the shared full-tile cache."""

    def __init__(self, cache: TileCache, size: int, edge: TileHashReader) -> None:
        self._cache = cache
        self.size = size
        self._edge = edge

    def node(self, level: int, index: int) -> bytes:
        tile_level, sub = divmod(level, TILE_HEIGHT)
        first = index << sub  # the node's first hash at tree level 8 * tile_level
        tile_index = first >> TILE_HEIGHT
        hashes_at_level = self.size >> (TILE_HEIGHT * tile_level)
        if hashes_at_level - tile_index * TILE_WIDTH < TILE_WIDTH:
            return self._edge.read_hashes([NodeId(level, index)])[0]
        levels = self._cache._full_levels(self, tile_level, tile_index)
        at = ((first % TILE_WIDTH) >> sub) * HASH_SIZE
        return levels[sub][at : at + HASH_SIZE]

    def read_hashes(self, nodes: Sequence[NodeId]) -> list[bytes]:
        out: list[bytes] = []
        for level, index in nodes:
            if level < 0 or index < 0 or level > 64 or (index + 1) << level > self.size:
                raise MalformedError(f"node ({level}, {index}) is not complete in the tree")
            out.append(self.node(level, index))
        return out
