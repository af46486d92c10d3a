"""Partner matching speed: PdqIndex (multi-index hashing) beside faiss IndexBinaryFlat.

For each size (1,000,000 and 10,000,000 PDQ hashes; --quick: 100,000) the data is half
uniform random hashes, half near-duplicates (0..16 bits flipped) of them; queries are half
near-duplicates of stored hashes (hits) and half random (misses); threshold 31 (inclusive).
Prints: index build time and RSS delta; lookups per second single-query and batched, on one
core and on two (forked processes sharing the index copy-on-write); faiss IndexBinaryFlat
(one thread) range_search on the same data and queries (a subset when it is slow), with the
speed ratio; recall and precision of the index against faiss's brute-force results.

    .venv/bin/python bench/bench_match.py [--quick | --smoke] [--sizes 1e6 1e7] [--seconds 5]

``--smoke``: 5,000 hashes, 0.2 s per figure. ``--json`` adds the rows of bench/README.md's
convention as the last line of stdout. faiss-cpu is optional (not a project dependency): without
it, its figures show n/a.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import multiprocessing as mp
import os
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from _report import Rows, add_mode_flags, mode_of

from partner_sdk.index import PdqIndex, digests_to_words

THRESHOLD = 31
U64 = npt.NDArray[np.uint64]
_INDEX: PdqIndex | None = None  # set before forking the 2-core workers
FAISS = "faiss IndexBinaryFlat, 1 thread"
SINGLE_AIM = ">= 1,000/s (thousands per core)"


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    seconds: float  # per throughput figure
    faiss_seconds: float
    queries: int = 20_000


PLANS = {
    "smoke": Plan((5_000,), 0.2, 0.2, queries=2_000),
    "quick": Plan((100_000,), 1.0, 2.0),
    "full": Plan((1_000_000, 10_000_000), 4.0, 6.0),
}


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def flips(rng: np.random.Generator, shape: tuple[int, int], rounds: int) -> U64:
    out = np.zeros(shape, dtype=np.uint64)
    for _ in range(rounds):
        bit = np.uint64(1) << rng.integers(0, 64, shape).astype(np.uint64)
        out |= bit * (rng.random(shape) < 0.5)
    return out


def dataset(rng: np.random.Generator, n: int) -> U64:
    half = n // 2
    words = digests_to_words(rng.integers(0, 256, (n, 32), dtype=np.uint8))
    words[half:] = words[rng.integers(0, half, n - half)] ^ flips(rng, (n - half, 4), 4)
    return words


def queries(rng: np.random.Generator, words: U64, count: int) -> U64:
    near = words[rng.integers(0, len(words), count // 2)] ^ flips(rng, (count // 2, 4), 4)
    far = digests_to_words(rng.integers(0, 256, (count - count // 2, 32), dtype=np.uint8))
    q = np.vstack([near, far])
    return q[rng.permutation(len(q))]


def rate_single(index: PdqIndex, q: U64, seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while True:
        index.search(q[done % len(q) : done % len(q) + 1], THRESHOLD)
        done += 1
        if done % 64 == 0 and time.perf_counter() - start > seconds:
            return done / (time.perf_counter() - start)


def rate_batch(index: PdqIndex, q: U64, seconds: float, batch: int = 1024) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        i = done % len(q)
        index.search(q[i : i + batch], THRESHOLD)
        done += len(q[i : i + batch])
    return done / (time.perf_counter() - start)


def _worker(args: tuple[U64, float, bool, int]) -> tuple[int, float]:
    q, seconds, batch, seed = args
    assert _INDEX is not None
    q = np.roll(q, seed * 997, axis=0)
    if batch:
        r = rate_batch(_INDEX, q, seconds)
    else:
        r = rate_single(_INDEX, q, seconds)
    return int(r * seconds), seconds


def rate_two_cores(q: U64, seconds: float, batch: bool) -> float:
    ctx = mp.get_context("fork")
    with ctx.Pool(2) as pool:
        start = time.perf_counter()
        out = pool.map(_worker, [(q, seconds, batch, 0), (q, seconds, batch, 1)])
        wall = time.perf_counter() - start
    return sum(n for n, _ in out) / max(wall, seconds)


def faiss_run(words: U64, q: U64, budget: float) -> tuple[float, float, list[set[int]], int]:
    """(single-query rate, batch rate, results per query, how many queries) on one thread."""
    import faiss

    faiss.omp_set_num_threads(1)
    codes = words.astype(">u8").view(np.uint8).reshape(-1, 32)
    index = faiss.IndexBinaryFlat(256)
    index.add(codes)
    qc = q.astype(">u8").view(np.uint8).reshape(-1, 32)
    start, n = time.perf_counter(), 0
    while n < len(qc) and (n < 8 or time.perf_counter() - start < budget / 2):
        index.range_search(qc[n : n + 1], THRESHOLD + 1)  # faiss: distance < radius
        n += 1
    single = n / (time.perf_counter() - start)
    m = max(8, min(len(qc), int(single * budget / 2)))
    start = time.perf_counter()
    lims, _, ids = index.range_search(qc[:m], THRESHOLD + 1)
    batch = m / (time.perf_counter() - start)
    found = [set(ids[lims[i] : lims[i + 1]].tolist()) for i in range(m)]
    return single, batch, found, m


def bench(n: int, seconds: float, faiss_budget: float, query_count: int, rows: Rows) -> None:
    global _INDEX
    rng = np.random.default_rng(n)
    words = dataset(rng, n)
    q = queries(rng, words, query_count)
    gc.collect()
    before = rss()
    start = time.perf_counter()
    index = PdqIndex()
    index.add(words, np.arange(n, dtype=np.int64), np.full(n, 90, dtype=np.uint8))
    build = time.perf_counter() - start
    grown = rss() - before
    _INDEX = index
    print(f"\n== {n:,} PDQ hashes (half random, half near-duplicates), threshold {THRESHOLD}")
    print(
        f"build {build:.2f} s; RSS +{grown / 2**20:.0f} MiB (index arrays "
        f"{index.nbytes() / 2**20:.0f} MiB; segments {index.segments()})"
    )
    single = rate_single(index, q, seconds)
    batch = rate_batch(index, q, seconds)
    single2 = rate_two_cores(q, seconds, batch=False)
    batch2 = rate_two_cores(q, seconds, batch=True)
    f_single = f_batch = recall = None
    extra = 0
    if importlib.util.find_spec("faiss") is None:
        print("faiss: NOT INSTALLED (pip install faiss-cpu); its figures show n/a")
        print(f"PdqIndex 1 core : {single:,.0f}/s single, {batch:,.0f}/s batch")
    else:
        f_single, f_batch, f_found, m = faiss_run(words, q, faiss_budget)
        hits = index.search(q[:m], THRESHOLD)
        ours = [set() for _ in range(m)]  # type: list[set[int]]
        for qi, key in zip(hits.query.tolist(), hits.key.tolist(), strict=True):
            ours[qi].add(key)
        want = sum(len(s) for s in f_found)
        got = sum(len(s & t) for s, t in zip(ours, f_found, strict=True))
        extra = sum(len(s - t) for s, t in zip(ours, f_found, strict=True))
        print(
            f"faiss IndexBinaryFlat, 1 thread ({m} queries): {f_single:,.0f}/s single, "
            f"{f_batch:,.0f}/s batch"
        )
        print(
            f"PdqIndex 1 core : {single:,.0f}/s single ({single / f_single:.1f}x faiss), "
            f"{batch:,.0f}/s batch ({batch / f_batch:.1f}x faiss batch)"
        )
        recall = got / want if want else 1.0
    print(f"PdqIndex 2 procs: {single2:,.0f}/s single, {batch2:,.0f}/s batch")
    if recall is not None:
        print(
            f"recall vs faiss brute force: {recall:.6f} ({got}/{want} pairs), extra pairs: {extra}"
        )
    at = f"{n:,} hashes"
    rows.add(f"index build, {at}", build, "s")
    rows.add(f"RSS growth, {at}", grown / 2**20, "MiB", "the hashes (32 B each)", n * 32 / 2**20)
    rows.add(
        f"lookups, single query, 1 core, {at}",
        single,
        "/s",
        FAISS,
        f_single,
        aim=SINGLE_AIM,
        met=single >= 1000,
    )
    rows.add(f"lookups, batches of 1,024, 1 core, {at}", batch, "/s", FAISS, f_batch)
    rows.add(f"lookups, single query, 2 processes, {at}", single2, "/s", "1 core", single)
    rows.add(
        f"recall vs faiss brute force, {at}",
        recall,
        "",
        aim="1.0, no extra pairs",
        met=recall == 1.0 and extra == 0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_mode_flags(
        parser,
        smoke="5,000 hashes, 0.2 s per figure",
        quick="100,000 hashes, 1 s per figure",
        full="1e6 and 1e7 hashes, 4 s per figure",
    )
    parser.add_argument("--sizes", nargs="*", type=float, help="hash counts (mode's default)")
    parser.add_argument("--seconds", type=float, help="per throughput figure")
    parser.add_argument("--faiss-seconds", type=float)
    args = parser.parse_args()
    plan = PLANS[mode_of(args)]
    sizes = [int(s) for s in args.sizes] if args.sizes else plan.sizes
    rows = Rows()
    print(f"cpus: {os.cpu_count()}; numpy {np.__version__}")
    for n in sizes:
        bench(
            n,
            args.seconds or plan.seconds,
            args.faiss_seconds or plan.faiss_seconds,
            plan.queries,
            rows,
        )
    if args.json:
        rows.print_json()


if __name__ == "__main__":
    main()
