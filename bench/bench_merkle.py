"""Benchmark: tree appends with tiles, proofs from in-memory tiles, proof verification.

Prints each figure beside this machine's baselines measured in the same run (raw SHA-256 of a
64-byte input with hashlib, and Ed25519 verification with PyNaCl), as ratios:

- append cost per leaf in units of one raw hash (the floor is about 2: a leaf hash plus about
  one node hash per leaf; target: within 3x of that floor);
- one entry per append with TileAppender, which keeps the right edge in memory (target: at
  least 0.05x raw SHA-256, issue 17; the stateless append_tiles is the "batch 1" row), with and
  without folding the root after each append (that fold is popcount(size) - 1 hashes);
- verification cost in units of the raw hash cost of the proof's path (target: within 2x).

    .venv/bin/python bench/bench_merkle.py            # tree sizes 1e3, 1e6, 1e7 (~1-2 min)
    .venv/bin/python bench/bench_merkle.py --quick    # tree sizes 1e3, 1e5
    .venv/bin/python bench/bench_merkle.py --smoke    # tiny sizes, short rounds (CI)

``--json`` adds the rows of bench/README.md's convention as the last line of stdout.

Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nacl.signing
from _report import Rows, add_mode_flags, mode_of

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
    TileAppender,
    TileHashReader,
    append_tiles,
    partial_tiles,
)
from crypto.tree_state import TreeState

RAW = "raw SHA-256 (64 B, hashlib)"
APPEND_AIM = ">= 0.167 (3x the 2-hash floor)"
SINGLE_AIM = ">= 0.05 (issue 17)"
VERIFY_AIM = ">= 0.5 (2x its path's raw cost)"


@dataclass(frozen=True)
class Plan:
    """How long and how big, per mode."""

    seconds: float  # each side of a paired round
    rounds: int  # paired rounds for verification (generation and appends: at most 3)
    totals: dict[int, int]  # append batch size -> leaves appended per measurement
    sizes: tuple[int, ...]  # trees to prove from
    proofs: int = 200  # random proofs per tree
    single_from: int = 100_000  # also append one at a time onto a tree this big


PLANS = {
    "smoke": Plan(0.02, 1, {1: 256, 4096: 8192}, (1000,), proofs=20, single_from=1000),
    "quick": Plan(
        0.1, 5, {1: 1024, 16: 4096, 256: 16384, 4096: 16384, 65536: 131072}, (1000, 100_000)
    ),
    "full": Plan(
        0.1,
        5,
        {1: 1024, 16: 4096, 256: 16384, 4096: 16384, 65536: 131072},
        (1000, 1_000_000, 10_000_000),
        single_from=1_000_000,
    ),
}
ROW_BATCHES = (1, 4096)  # append batch sizes that also get a JSON row


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


_RAW_INPUTS = [os.urandom(64) for _ in range(4096)]


def raw_hashes() -> int:
    """The baseline: SHA-256 of 64-byte inputs through hashlib, driven by a comprehension
    (the cheapest way Python code can call hashlib)."""
    sha = hashlib.sha256
    return len([sha(x).digest() for x in _RAW_INPUTS])


def paired(run: Callable[[], int], rounds: int = 5, seconds: float = 0.1) -> tuple[float, float]:
    """(operations/s, cost of one operation in raw hashes), as medians over rounds that
    measure the baseline right before and after the operation, so that load from other
    processes on the machine hits both sides of each ratio alike."""
    rates: list[float] = []
    costs: list[float] = []
    for _ in range(rounds):
        before = rate(raw_hashes, seconds)
        op = rate(run, seconds)
        after = rate(raw_hashes, seconds)
        rates.append(op)
        costs.append((before + after) / 2 / op)
    return statistics.median(rates), statistics.median(costs)


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


def ed25519_rate(min_seconds: float = 0.5) -> float:
    key = nacl.signing.SigningKey(b"\x07" * 32)
    verify_key = key.verify_key
    signed = [key.sign(b"checkpoint %d" % i) for i in range(200)]

    def run() -> int:
        for s in signed:
            verify_key.verify(s)
        return len(signed)

    return rate(run, min_seconds)


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


def bench_append(plan: Plan, rows: Rows) -> None:
    print("\n== appends (leaves/s; cost per leaf in raw hashes; floor: 1 leaf + ~1 node hash) ==")
    rounds = min(3, plan.rounds)
    for batch, total in plan.totals.items():
        entries = [b"record %d" % i for i in range(total)]
        leaves = [leaf_hash(e) for e in entries]

        def with_tiles(
            batch: int = batch, total: int = total, entries: list[bytes] = entries
        ) -> int:
            store = TileStore()
            for i in range(0, total, batch):
                store.append(entries[i : i + batch])
            return total

        def state_only(batch: int = batch, total: int = total, leaves: list[bytes] = leaves) -> int:
            state = TreeState.empty()
            for i in range(0, total, batch):
                state, _ = state.append(leaves[i : i + batch])
            return total

        tiles_rate, tiles_cost = paired(with_tiles, rounds, plan.seconds)
        state_rate, state_cost = paired(state_only, rounds, plan.seconds)
        print(
            f"batch {batch:>6}: state+tiles+bundles from entries {tiles_rate:>10,.0f}/s "
            f"= {tiles_cost:6.2f} raw hashes/leaf ({tiles_cost / 2:5.2f}x floor 2) | "
            f"state only, leaf hashes given {state_rate:>10,.0f}/s "
            f"= {state_cost:5.2f} raw hashes/leaf ({state_cost:4.2f}x floor 1)"
        )
        if batch in ROW_BATCHES:
            rows.add(
                f"leaves appended with tiles, batch {batch:,}",
                tiles_rate,
                "/s",
                RAW,
                tiles_rate * tiles_cost,
                ratio=1 / tiles_cost,
                aim=APPEND_AIM,
                met=tiles_cost <= 6.0,
            )


def bench_single(plan: Plan, rows: Rows) -> None:
    """One entry per append through TileAppender (the stateful appender), from an empty tree
    and onto a large one; the stateless append_tiles figure is the "batch 1" row above."""
    print(
        "\n== one entry per append with TileAppender (state, tiles and bundles kept in memory) =="
    )
    total = plan.totals[1]
    rounds = min(3, plan.rounds)
    big = plan.single_from
    base = TileAppender()
    for lo in range(0, big, 65536):
        base.extend([b"record %d" % i for i in range(lo, min(big, lo + 65536))])
    for start in (0, big):
        entries = [b"record %d" % i for i in range(start, start + total)]
        for with_root in (False, True):

            def run(
                start: int = start, entries: list[bytes] = entries, with_root: bool = with_root
            ) -> int:
                app = base.copy() if start else TileAppender()
                written: dict[str, bytes] = {}  # as a hub writes each file it is given
                for entry in entries:
                    written.update(app.append(entry))
                    if with_root:
                        app.root()
                return len(entries)

            op_rate, cost = paired(run, rounds, plan.seconds)
            what = "tiles+bundles" + (", root after each" if with_root else "")
            print(
                f"onto {start:>10,} leaves, {what:<32} {op_rate:>10,.0f}/s "
                f"= {cost:6.2f} raw hashes/leaf (ratio {1 / cost:5.3f})"
            )
            rows.add(
                f"leaves appended one at a time with TileAppender onto {start:,} leaves, " + what,
                op_rate,
                "/s",
                RAW,
                op_rate * cost,
                ratio=1 / cost,
                aim=SINGLE_AIM,
                met=cost <= 20.0,
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


def bench_proofs(size: int, ed: float, plan: Plan, rows: Rows) -> None:
    progress(f"building a tree of {size:,} leaves with tiles ...")
    start = time.perf_counter()
    store = build(size)
    built = time.perf_counter() - start
    root = store.state.root()
    print(
        f"\n== tree of {size:,} leaves: built in {built:.1f}s ({size / built:,.0f} leaves/s), "
        f"{len(store.tiles):,} tiles+bundles in memory =="
    )
    rnd = random.Random(size)
    n = plan.proofs
    cold_n = min(20, n)

    def fetch(tile: Tile) -> bytes:
        return store.tiles[tile.path]

    indexes = [rnd.randrange(size) for _ in range(n)]
    leaves = [leaf_hash(b"record %d" % i) for i in indexes]
    size1s = [rnd.randint(1, size) for _ in range(n)]
    warm = TileHashReader(size, root, fetch)
    proofs = [inclusion_proof(i, size, warm) for i in indexes]
    roots1 = [tree_root(s1, warm) for s1 in size1s]
    cproofs = [consistency_proof(s1, size, warm) for s1 in size1s]
    path = sum(len(p) for p in proofs) / n
    chashes = sum(consistency_hashes(s1, size) for s1 in size1s) / n

    def incl_cold() -> int:
        # A fresh reader per proof: fetch and authenticate every tile the proof touches.
        for i in indexes[:cold_n]:
            inclusion_proof(i, size, TileHashReader(size, root, fetch))
        return cold_n

    def incl_warm() -> int:
        # One reader whose authenticated tiles stay cached, as in a proof server.
        for i in indexes:
            inclusion_proof(i, size, warm)
        return n

    def incl_verify() -> int:
        for leaf, i, p in zip(leaves, indexes, proofs, strict=True):
            verify_inclusion(leaf, i, size, p, root)
        return n

    def cons_cold() -> int:
        for s1 in size1s[:cold_n]:
            consistency_proof(s1, size, TileHashReader(size, root, fetch))
        return cold_n

    def cons_warm() -> int:
        for s1 in size1s:
            consistency_proof(s1, size, warm)
        return n

    def cons_verify() -> int:
        for s1, r1, p in zip(size1s, roots1, cproofs, strict=True):
            verify_consistency(s1, size, p, r1, root)
        return n

    kinds = [
        ("inclusion", incl_cold, incl_warm, incl_verify, path),
        ("consistency", cons_cold, cons_warm, cons_verify, chashes),
    ]
    rounds = min(3, plan.rounds)
    for name, cold, warm_run, verify, hashes in kinds:
        cold_rate, cold_cost = paired(cold, rounds, plan.seconds)
        warm_rate, _ = paired(warm_run, rounds, plan.seconds)
        verify_rate, verify_cost = paired(verify, plan.rounds, plan.seconds)
        print(
            f"{name:>11}: generate from tiles {cold_rate:>7,.0f}/s cold, {warm_rate:>7,.0f}/s warm"
            f" | verify {verify_rate:>7,.0f}/s, {hashes:4.1f} hashes on its path: "
            f"{verify_cost / hashes:4.2f}x their raw cost ({ed / verify_rate:.2f} Ed25519 verifies)"
        )
        # Baseline: raw SHA-256 of as many hashes as the proof's path holds (paths/s).
        path_baseline = f"SHA-256 of its {hashes:.1f}-hash path"
        rows.add(
            f"{name} proofs generated (cold tiles), {size:,} leaves",
            cold_rate,
            "/s",
            path_baseline,
            cold_rate * cold_cost / hashes,
        )
        rows.add(
            f"{name} proofs verified, {size:,} leaves",
            verify_rate,
            "/s",
            path_baseline,
            verify_rate * verify_cost / hashes,
            aim=VERIFY_AIM,
            met=verify_cost / hashes <= 2.0,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_mode_flags(
        parser,
        smoke="tree of 1e3, tiny appends",
        quick="tree sizes 1e3 and 1e5",
        full="tree sizes 1e3, 1e6, 1e7",
    )
    args = parser.parse_args()
    plan = PLANS[mode_of(args)]
    rows = Rows()
    progress("measuring baselines ...")
    raw = statistics.median(rate(raw_hashes, 2 * plan.seconds) for _ in range(5))
    ed = ed25519_rate(5 * plan.seconds)
    print(f"python {sys.version.split()[0]}")
    print(f"baseline: raw SHA-256 (64-byte input, hashlib) {raw:>12,.0f}/s (median of 5)")
    print(f"baseline: Ed25519 verify (PyNaCl)              {ed:>12,.0f}/s")
    print(
        "ratios are medians of rounds that re-measure the raw SHA-256 baseline beside each figure"
    )
    rows.add("Ed25519 verify (PyNaCl)", ed, "/s", RAW, raw)
    bench_append(plan, rows)
    bench_single(plan, rows)
    for size in plan.sizes:
        bench_proofs(size, ed, plan, rows)
    if args.json:
        rows.print_json()


if __name__ == "__main__":
    main()
