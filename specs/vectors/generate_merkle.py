"""Generate specs/vectors/merkle/: roots, proofs, tile paths, tree-state bytes and tile bytes.

Independent of crypto/: everything here is computed with the naive recursive definitions of
RFC 9162 section 2.1 and C2SP tlog-tiles written out below (hashlib only), so the tests that
replay these files check crypto/merkle.py, crypto/tree_state.py and crypto/tiles.py against a
second implementation. Deterministic (fixed entries, no randomness). Run from anywhere:

    .venv/bin/python specs/vectors/generate_merkle.py

Files (byte strings are lowercase hex):
- tree.json: 45 entries, their leaf hashes, the root of every prefix, and inclusion and
  consistency proofs for chosen (index, size) and (size1, size2) pairs.
- tile_paths.json: valid tile and entry-bundle paths with their (level, index, width), invalid
  paths with the reason, the tiles of chosen tree sizes, and the tiles an append writes.
- tree_state.json: serialised tree states (specs/merkle.md, "Tree state") of chosen sizes.
- tiles.json: a 1000-entry log appended in uneven batches; SHA-256 of every tile and bundle
  written along the way, and the final root.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "merkle"


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf(data: bytes) -> bytes:
    return sha(b"\x00" + data)


def node(left: bytes, right: bytes) -> bytes:
    return sha(b"\x01" + left + right)


def split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 2.1.1 over leaf hashes."""
    if not leaves:
        return sha(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(m, D[n])."""
    if len(leaves) <= 1:
        return []
    k = split(len(leaves))
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """RFC 9162 2.1.4.1 SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = split(n)
    if m <= k:
        return [*subproof(m, leaves[:k], whole), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def index_path(n: int) -> str:
    digits = str(n)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def tile_path(level: int | str, n: int, width: int) -> str:
    suffix = "" if width == 256 else f".p/{width}"
    return f"tile/{level}/{index_path(n)}{suffix}"


def tiles_of(size: int) -> list[tuple[int, int, int]]:
    """(level, n, width) of every tile of a tree of ``size``: tlog-tiles, straight from the text."""
    out: list[tuple[int, int, int]] = []
    level = 0
    while size // 256**level > 0:
        count = size // 256**level
        out.extend((level, n, 256) for n in range(count // 256))
        if count % 256:
            out.append((level, count // 256, count % 256))
        level += 1
    return out


def tile_hashes(leaves: list[bytes], level: int, n: int, width: int) -> list[bytes]:
    """tlog-tiles: MTH(D[(n*256+i)*256**l : (n*256+i+1)*256**l]) for i < width."""
    span = 256**level
    return [mth(leaves[(n * 256 + i) * span : (n * 256 + i + 1) * span]) for i in range(width)]


def bundle(entries: list[bytes]) -> bytes:
    return b"".join(struct.pack(">H", len(e)) + e for e in entries)


def frontier(leaves: list[bytes]) -> list[bytes]:
    """Roots of the perfect subtrees covering the leaves, largest first."""
    out: list[bytes] = []
    start, size = 0, len(leaves)
    for bit in range(63, -1, -1):
        if size >> bit & 1:
            out.append(mth(leaves[start : start + (1 << bit)]))
            start += 1 << bit
    return out


def write(name: str, data: Any) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")


def gen_tree() -> list[bytes]:
    # Entries of varied lengths, including the empty entry, so leaf hashing is exercised.
    entries = [bytes(range(i % 7)) + b"ncii-merkle-vector-%d" % i if i else b"" for i in range(45)]
    leaves = [leaf(e) for e in entries]
    inclusion = []
    for index, size in [
        (0, 1),
        (0, 2),
        (1, 2),
        (2, 3),
        (5, 8),
        (6, 7),
        (0, 45),
        (21, 45),
        (31, 32),
        (32, 45),
        (44, 45),
        (13, 17),
    ]:
        inclusion.append(
            {
                "name": f"{index}-of-{size}",
                "index": index,
                "size": size,
                "leaf_hash": leaves[index].hex(),
                "root": mth(leaves[:size]).hex(),
                "proof": [p.hex() for p in path(index, leaves[:size])],
            }
        )
    consistency = []
    for size1, size2 in [
        (1, 1),
        (1, 2),
        (1, 45),
        (2, 5),
        (3, 7),
        (4, 8),
        (6, 8),
        (7, 45),
        (16, 45),
        (31, 33),
        (32, 45),
        (44, 45),
        (45, 45),
    ]:
        proof = [] if size1 == size2 else subproof(size1, leaves[:size2], True)
        consistency.append(
            {
                "name": f"{size1}-to-{size2}",
                "size1": size1,
                "size2": size2,
                "root1": mth(leaves[:size1]).hex(),
                "root2": mth(leaves[:size2]).hex(),
                "proof": [p.hex() for p in proof],
            }
        )
    write(
        "tree.json",
        {
            "description": "RFC 9162 roots and proofs over 45 entries; leaf i is the hex entry i",
            "entries": [e.hex() for e in entries],
            "leaf_hashes": [h.hex() for h in leaves],
            "roots": {str(n): mth(leaves[:n]).hex() for n in range(len(leaves) + 1)},
            "inclusion": inclusion,
            "consistency": consistency,
        },
    )
    return entries


def gen_paths() -> None:
    valid = []
    chosen: list[tuple[int | str, int, int]] = [
        (0, 0, 256),
        (0, 0, 1),
        (0, 1, 44),
        (1, 0, 1),
        (0, 999, 256),
        (0, 1000, 256),
        (2, 1234067, 17),
        (5, 0, 255),
        (0, 1000000, 3),
        ("entries", 0, 256),
        ("entries", 1, 44),
        ("entries", 1234067, 256),
    ]
    for level, n, width in chosen:
        valid.append(
            {"path": tile_path(level, n, width), "level": level, "index": n, "width": width}
        )
    invalid = [
        ("tile/0/1", "index-not-3-digits"),
        ("tile/0/0001", "index-4-digits"),
        ("tile/0/x000/001", "leading-zero-group"),
        ("tile/0/001/234", "group-without-x"),
        ("tile/0/x001", "last-group-with-x"),
        ("tile/00/000", "level-leading-zero"),
        ("tile/64/000", "level-above-63"),
        ("tile/-1/000", "negative-level"),
        ("tile/+1/000", "plus-sign"),
        ("tile/0/-01", "negative-index"),
        ("tile/0/000.p/0", "width-zero"),
        ("tile/0/000.p/256", "width-256-partial"),
        ("tile/0/000.p/044", "width-leading-zero"),
        ("tile/0/000.p/", "width-missing"),
        ("tile/0/000.p", "p-without-width"),
        ("tile/0/000.p/44/", "trailing-slash"),
        ("/tile/0/000", "leading-slash"),
        ("tile/0/../000", "dot-dot"),
        ("tile/../0/000", "dot-dot-level"),
        ("tile/0/./000", "dot-segment"),
        ("tile//0/000", "empty-segment"),
        ("TILE/0/000", "upper-case"),
        ("tile/0/000\n", "trailing-newline"),
        ("tile/0/ 000", "space"),
        ("tile/0/\u0661\u0662\u0663", "arabic-indic-digits"),
        ("tile/entries/000.p/256", "bundle-width-256"),
        ("tile/entries/x000/000", "bundle-leading-zero-group"),
        ("tile/data/000", "unknown-kind"),
        ("tile/8/000", "level-8-beyond-2-63"),
        ("tile/0/x036/x028/x797/x018/x963/x968", "index-beyond-2-63"),
        ("tile/0/" + "x999/" * 40 + "000", "overlong"),
        ("", "empty"),
    ]
    sizes = [0, 1, 255, 256, 257, 300, 65535, 65536, 65537, 70000]
    changed = []
    for old, new in [
        (0, 1),
        (0, 300),
        (1, 2),
        (255, 256),
        (256, 257),
        (300, 70000),
        (65535, 65536),
        (1000, 1000),
    ]:
        before = set(tiles_of(old))
        changed.append(
            {
                "old_size": old,
                "new_size": new,
                "paths": [tile_path(*t) for t in tiles_of(new) if t not in before],
            }
        )
    write(
        "tile_paths.json",
        {
            "description": "C2SP tlog-tiles paths (height 8); invalid ones must be rejected",
            "valid": valid,
            "invalid": [{"path": p, "why": why} for p, why in invalid],
            "tiles_for_size": {str(s): [tile_path(*t) for t in tiles_of(s)] for s in sizes},
            "changed_tiles": changed,
        },
    )


def gen_states(entries: list[bytes]) -> None:
    leaves = [leaf(e) for e in entries]
    states = []
    for size in [0, 1, 2, 3, 7, 8, 31, 44, 45]:
        raw = struct.pack(">BQ", 1, size) + b"".join(frontier(leaves[:size]))
        states.append({"size": size, "root": mth(leaves[:size]).hex(), "bytes": raw.hex()})
    write(
        "tree_state.json",
        {
            "description": "version 0x01, size uint64 big-endian, popcount(size) frontier hashes",
            "states": states,
        },
    )


def gen_tiles() -> None:
    entries = [b"entry %d" % i for i in range(1000)]
    leaves = [leaf(e) for e in entries]
    batches = [1, 254, 1, 1, 300, 187, 256]
    assert sum(batches) == len(entries)
    written: dict[str, str] = {}
    size = 0
    for batch in batches:
        new = size + batch
        before = set(tiles_of(size))
        for level, n, width in tiles_of(new):
            if (level, n, width) in before:
                continue
            data = b"".join(tile_hashes(leaves, level, n, width))
            written[tile_path(level, n, width)] = hashlib.sha256(data).hexdigest()
            if level == 0:
                chunk = entries[n * 256 : n * 256 + width]
                written[tile_path("entries", n, width)] = hashlib.sha256(bundle(chunk)).hexdigest()
        size = new
    write(
        "tiles.json",
        {
            "description": "entries b'entry %d'; SHA-256 of each tile and bundle the batches write",
            "size": 1000,
            "batches": batches,
            "root": mth(leaves).hex(),
            "tile_sha256": dict(sorted(written.items())),
        },
    )


def main() -> None:
    entries = gen_tree()
    gen_paths()
    gen_states(entries)
    gen_tiles()


if __name__ == "__main__":
    main()
