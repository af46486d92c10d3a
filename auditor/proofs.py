"""Consistency between two verified checkpoints, decided from tiles, with publishable evidence.

The proof is computed from tiles authenticated against the LARGER checkpoint
(crypto.tiles.TileHashReader), so its hashes are the real nodes of that signed tree. From the
same tiles we read the root of that tree's prefix at the smaller size (``implied_root``). Then:

* the proof verifies from ``implied_root`` to the larger root (a sanity check that anyone can
  repeat with crypto.merkle.verify_consistency), and
* ``implied_root`` equals the smaller checkpoint's root: consistent; it differs: the log signed
  two different trees, and (proof, implied_root, both notes) is the evidence (specs/audit.md §4).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from auditor.source import LogSource
from auditor.trust import VerifiedCheckpoint
from crypto.merkle import consistency_proof, tree_root, verify_consistency
from crypto.tiles import Tile, TileHashReader

__all__ = ["ConsistencyResult", "check_consistency", "tile_reader"]


def tile_reader(source: LogSource, size: int, root: bytes) -> TileHashReader:
    """A HashReader over ``source``'s tiles, each authenticated against (size, root)."""

    def fetch(tile: Tile) -> bytes:
        return source.get(tile.path)

    return TileHashReader(size, root, fetch)


@dataclass(frozen=True)
class ConsistencyResult:
    """The outcome for (smaller, larger): the proof from the larger tree's tiles and the root
    those tiles give for the smaller size."""

    smaller: VerifiedCheckpoint
    larger: VerifiedCheckpoint
    proof: tuple[bytes, ...]
    implied_root: bytes

    @property
    def consistent(self) -> bool:
        return self.implied_root == self.smaller.root

    def evidence(self) -> dict[str, Any]:
        """The JSON evidence of specs/audit.md §4 (``consistency_proof`` object)."""
        return {
            "first_size": self.smaller.size,
            "second_size": self.larger.size,
            "proof": [base64.b64encode(h).decode() for h in self.proof],
            "first_root_in_second_tree": base64.b64encode(self.implied_root).decode(),
        }


def check_consistency(
    a: VerifiedCheckpoint, b: VerifiedCheckpoint, source: LogSource
) -> ConsistencyResult:
    """Decide whether the smaller of two verified checkpoints is a prefix of the larger one.

    Raises InconsistentTreeError if the source's tiles do not match the larger checkpoint (the
    log serves data that contradicts its own signature), and FetchError/NotFoundError if they
    cannot be read. A fork is a result (``consistent`` False), not an exception.
    """
    smaller, larger = (a, b) if a.size <= b.size else (b, a)
    reader = tile_reader(source, larger.size, larger.root)
    reader.state()  # authenticate the right edge before any hash is used
    proof = consistency_proof(smaller.size, larger.size, reader)
    implied = tree_root(smaller.size, reader)
    verify_consistency(smaller.size, larger.size, proof, implied, larger.root)
    return ConsistencyResult(smaller, larger, tuple(proof), implied)
