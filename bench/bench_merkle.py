"""Benchmark: tree appends with tiles, proofs from in-memory tiles, proof verification.

Prints each figure beside this machine's baselines measured in the same run (raw SHA-256 of a
64-byte input with hashlib, and Ed25519 verification with PyNaCl), as ratios:

- append cost per leaf in units of one raw hash (the floor is about 2: a leaf hash plus about
  one node hash per leaf; target: within 3x of that floor);
- verification cost in units of the raw hash cost of the proof's path (target: within 2x).

    .venv/bin/python bench/bench_merkle.py            # tree sizes 1e3, 1e6, 1e7 (~1-2 min)
    .venv/bin/python bench/bench_merkle.py --quick    # tree sizes 1e3, 1e5

Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nacl.signing

from crypto.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from crypto.tiles import (
    EntryBundle,
    Tile,
    TileHashReader,
    append_tiles,
    partial_tiles,
)
from crypto.tree_state import TreeState


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rate(fn: Callable[[], int], min_seconds: float = 0.5) -> float:
    """Operations per second of ``fn`` (which returns how many operations it did)."""
    done, start = 0, time.perf_counter()
    while True:
        done += fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


_BEST_RAW = 0.0


def raw_hash_rate() -> float:
    """Best raw SHA-256 rate seen so far in this run (re-measured before each section, so a
    busy machine makes the ratios pessimistic rather than flattering)."""
    global _BEST_RAW
    inputs = [os.urandom(64) for _ in range(10000)]
    sha = hashlib.sha256

    def run() -> int:
        # A comprehension: the cheapest way Python code can drive hashlib.
        return len([sha(x).digest() for x in inputs])

    for _ in range(5):
        _BEST_RAW = max(_BEST_RAW, rate(run, 0.1))
    return _BEST_RAW


def consistency_hashes(size1: int, size2: int) -> int:
    """Exactly how many node hashes RFC 9162 2.1.4.2 computes for this pair of sizes."""
    if size1 in (0, size2):
        return 0
    steps = len(consistency_proof_shape(size1, size2))
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    count = 0
    for _ in range(steps):
        if fn & 1 or fn == sn:
            count += 2
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            count += 1
        fn >>= 1
        sn >>= 1
    return count


def consistency_proof_shape(size1: int, size2: int) -> list[int]:
    """One element per folding step of the verifier: the proof, minus its first hash unless
    size1 is a power of two (then root1 is prepended)."""
    shift = (size1 & -size1).bit_length() - 1
    inner = ((size1 - 1) ^ (size2 - 1)).bit_length()
    border = ((size1 - 1) >> inner).bit_count()
    length = (inner - shift) + border + (0 if size1 == 1 << shift else 1)
    return [0] * (length if size1 == 1 << shift else length - 1)


def ed25519_rate() -> float:
    key = nacl.signing.SigningKey(b"\x07" * 32)
    verify_key = key.verify_key
    signed = [key.sign(b"checkpoint %d" % i) for i in range(200)]

    def run() -> int:
        for s in signed:
            verify_key.verify(s)
        return len(signed)

    return rate(run)


class TileStore:
    """Tiles and bundles in a dict, as a hub's tile directory would hold them."""

    def __init__(self) -> None:
        self.tiles: dict[str, bytes] = {}
        self.size = 0
        self.state = TreeState.empty()

    def read(self, tile: Tile | EntryBundle) -> bytes:
        return self.tiles[tile.path]

    def append(self, entries: list[bytes]) -> None:
        old = self.size
        update = append_tiles(old, self.read, entries=entries, state=self.state)
        # Superseded partial tiles are dropped to keep memory flat (a hub may keep them).
        new = update.state.size
        stale = {t.path for t in partial_tiles(old)} - {t.path for t in partial_tiles(new)}
        if old % 256 and (old >> 8, old % 256) != (new >> 8, new % 256):
            stale.add(EntryBundle(old >> 8, old % 256).path)
        for path in stale:
            self.tiles.pop(path, None)
        self.tiles.update(update.tiles)
        self.size = update.state.size
        self.state = update.state


def bench_append(raw: float) -> None:
    print("\n== appends to the tree state (leaves/s; cost per leaf in raw hashes) ==")
    for batch in (1, 16, 256, 4096, 65536):
        total = max(batch * 4, 8192) if batch < 65536 else 4 * 65536
        entries = [b"record %d" % i for i in range(total)]
        leaves = [leaf_hash(e) for e in entries]

        store = TileStore()
        start = time.perf_counter()
        for i in range(0, total, batch):
            store.append(entries[i : i + batch])
        with_tiles = total / (time.perf_counter() - start)

        state = TreeState.empty()
        start = time.perf_counter()
        for i in range(0, total, batch):
            state, _ = state.append(leaves[i : i + batch])
        state_only = total / (time.perf_counter() - start)
        raw = raw_hash_rate()
        # state_only excludes leaf hashing (leaf hashes given), so its floor is 1 hash/leaf.
        print(
            f"batch {batch:>6}: with tiles+bundles {with_tiles:>10,.0f} leaves/s "
            f"= {raw / with_tiles:5.2f} raw hashes/leaf ({raw / with_tiles / 2:4.2f}x floor 2); "
            f"state only (leaf hashes given) {state_only:>10,.0f}/s "
            f"= {raw / state_only:5.2f} raw hashes/leaf ({raw / state_only:4.2f}x floor 1)"
        )


def build(size: int) -> TileStore:
    store = TileStore()
    batch = 65536
    start = time.perf_counter()
    for lo in range(0, size, batch):
        hi = min(size, lo + batch)
        store.append([b"record %d" % i for i in range(lo, hi)])
        if (hi // batch) % 16 == 0 or hi == size:
            progress(f"  built {hi:,}/{size:,} leaves ({time.perf_counter() - start:.1f}s)")
    return store


def bench_proofs(size: int, raw: float, ed: float) -> None:
    progress(f"building a tree of {size:,} leaves with tiles ...")
    start = time.perf_counter()
    store = build(size)
    built = time.perf_counter() - start
    root = store.state.root()
    raw = raw_hash_rate()
    print(
        f"\n== tree of {size:,} leaves: built in {built:.1f}s ({size / built:,.0f} leaves/s, "
        f"{raw * built / size:.2f} raw hashes/leaf), {len(store.tiles):,} tiles+bundles =="
    )
    rnd = random.Random(size)
    n = 300

    def fetch(tile: Tile) -> bytes:
        return store.tiles[tile.path]

    # Cold: a fresh reader per proof (fetch and authenticate every tile it touches).
    indexes = [rnd.randrange(size) for _ in range(n)]
    start = time.perf_counter()
    for i in indexes:
        inclusion_proof(i, size, TileHashReader(size, root, fetch))
    cold = n / (time.perf_counter() - start)
    # Warm: one reader whose authenticated tiles stay cached (a proof server).
    warm_reader = TileHashReader(size, root, fetch)
    tree_root(size, warm_reader)
    for i in indexes:
        inclusion_proof(i, size, warm_reader)
    start = time.perf_counter()
    proofs = [inclusion_proof(i, size, warm_reader) for i in indexes]
    warm = n / (time.perf_counter() - start)
    leaves = [leaf_hash(b"record %d" % i) for i in indexes]
    path_len = sum(len(p) for p in proofs) / n

    def verify_all() -> int:
        for leaf, i, p in zip(leaves, indexes, proofs, strict=True):
            verify_inclusion(leaf, i, size, p, root)
        return n

    vrate = rate(verify_all)
    raw = raw_hash_rate()
    print(
        f"inclusion: generate from tiles {cold:>8,.0f}/s cold, {warm:>8,.0f}/s warm; "
        f"verify {vrate:>8,.0f}/s (path {path_len:.1f} hashes: "
        f"{raw / vrate / path_len:.2f}x its raw hash cost; {ed / vrate:.2f} Ed25519 verifies)"
    )

    pairs = []
    for _ in range(n):
        size1 = rnd.randint(1, size)
        pairs.append(size1)
    roots1 = {s1: tree_root(s1, warm_reader) for s1 in pairs}
    start = time.perf_counter()
    for s1 in pairs:
        consistency_proof(s1, size, TileHashReader(size, root, fetch))
    ccold = n / (time.perf_counter() - start)
    start = time.perf_counter()
    cproofs = [consistency_proof(s1, size, warm_reader) for s1 in pairs]
    cwarm = n / (time.perf_counter() - start)
    chashes = sum(consistency_hashes(s1, size) for s1 in pairs) / n
    raw = raw_hash_rate()

    def verify_consistency_all() -> int:
        for s1, p in zip(pairs, cproofs, strict=True):
            verify_consistency(s1, size, p, roots1[s1], root)
        return n

    crate = rate(verify_consistency_all)
    print(
        f"consistency: generate from tiles {ccold:>8,.0f}/s cold, {cwarm:>8,.0f}/s warm; "
        f"verify {crate:>8,.0f}/s ({chashes:.1f} hashes: "
        f"{raw / crate / chashes:.2f}x their raw hash cost)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tree sizes 1e3 and 1e5 only")
    args = parser.parse_args()
    progress("measuring baselines ...")
    raw = raw_hash_rate()
    ed = ed25519_rate()
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}")
    print(f"baseline: raw SHA-256 (64-byte input, hashlib) {raw:>12,.0f}/s")
    print(f"baseline: Ed25519 verify (PyNaCl)              {ed:>12,.0f}/s")
    bench_append(raw)
    for size in (1000, 100_000) if args.quick else (1000, 1_000_000, 10_000_000):
        bench_proofs(size, raw, ed)
    print(
        f"\nbest raw SHA-256 rate seen in this run (used for the ratios): {raw_hash_rate():,.0f}/s"
    )


if __name__ == "__main__":
    main()
