"""Tiles, entry bundles and the checkpoint as files under DATA/tiles (C2SP tlog-tiles layout).

Why files: they are immutable once written (full tiles never change; a partial tile of a given
width never changes either), so any web server, object store or CDN can serve them. Every
write is atomic (temporary file, fsync, rename, fsync of the directory; a round's tiles as one
batch: written and fsynced together, renamed, each directory fsynced once), so a crash never
leaves a torn tile; rewriting after a crash yields identical bytes (specs/hub-storage.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from crypto.errors import InconsistentTreeError
from crypto.tiles import EntryBundle, Tile, parse_path
from hub.atomicfile import write_atomically, write_many_atomically

__all__ = ["FileTileStore", "TileStore"]


class TileStore(Protocol):
    """Where the sequencer writes tiles and the log API reads them."""

    def read(self, tile: Tile | EntryBundle) -> bytes:
        """The bytes of a tile or bundle; InconsistentTreeError if it is missing."""
        ...

    def write(self, path: str, data: bytes) -> None:
        """Atomically store ``data`` at a tile path (``tile/...``) or ``checkpoint``."""
        ...

    def write_many(self, files: Sequence[tuple[str, bytes]]) -> None:
        """Store each (tile path, bytes) atomically; all are durable when this returns (in
        which order they appear before that is undefined)."""
        ...

    def get(self, path: str) -> bytes | None:
        """The bytes at a canonical path, or None if not (yet) written."""
        ...


class FileTileStore:
    """A :class:`TileStore` in a directory; paths are parsed, never joined from raw input."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _file(self, path: str) -> Path:
        if path != "checkpoint":
            parse_path(path)  # only canonical tile paths reach the file system
        return self.root / path

    def read(self, tile: Tile | EntryBundle) -> bytes:
        data = self.get(tile.path)
        if data is None:
            raise InconsistentTreeError(f"tile {tile.path} is missing from the tile store")
        return data

    def get(self, path: str) -> bytes | None:
        try:
            return self._file(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write(self, path: str, data: bytes) -> None:
        target = self._file(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, data)  # never a torn tile, even on a full disk

    def write_many(self, files: Sequence[tuple[str, bytes]]) -> None:
        targets = [(self._file(path), data) for path, data in files]
        for folder in dict.fromkeys(target.parent for target, _data in targets):
            folder.mkdir(parents=True, exist_ok=True)
        write_many_atomically(targets)
