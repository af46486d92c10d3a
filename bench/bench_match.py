"""Partner matching speed: PdqIndex (multi-index hashing) beside faiss IndexBinaryFlat.

For each size (1,000,000 and 10,000,000 PDQ hashes; --quick: 100,000) the data is half
uniform random hashes, half near-duplicates (0..16 bits flipped) of them; queries are half
near-duplicates of stored hashes (hits) and half random (misses); threshold 31 (inclusive).
Prints: index build time and RSS delta; lookups per second single-query and batched, on one
core and on two (forked processes sharing the index copy-on-write); faiss IndexBinaryFlat
(one thread) range_search on the same data and queries (a subset when it is slow), with the
speed ratio; recall and precision of the index against faiss's brute-force results.

    .venv/bin/python bench/bench_match.py [--quick] [--sizes 1e6 1e7] [--seconds 5]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import time

import numpy as np
import numpy.typing as npt

from partner_sdk.index import PdqIndex, digests_to_words

THRESHOLD = 31
U64 = npt.NDArray[np.uint64]
_INDEX: PdqIndex | None = None  # set before forking the 2-core workers


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


def bench(n: int, seconds: float, faiss_budget: float) -> None:
    global _INDEX
    rng = np.random.default_rng(n)
    words = dataset(rng, n)
    q = queries(rng, words, 20_000)
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
    print(f"PdqIndex 2 procs: {single2:,.0f}/s single, {batch2:,.0f}/s batch")
    recall = got / want if want else 1.0
    print(f"recall vs faiss brute force: {recall:.6f} ({got}/{want} pairs), extra pairs: {extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 hashes only")
    parser.add_argument("--sizes", nargs="*", type=float, default=[1e6, 1e7])
    parser.add_argument("--seconds", type=float, default=4.0, help="per throughput figure")
    parser.add_argument("--faiss-seconds", type=float, default=6.0)
    args = parser.parse_args()
    sizes = [100_000] if args.quick else [int(s) for s in args.sizes]
    print(f"cpus: {os.cpu_count()}; numpy {np.__version__}")
    for n in sizes:
        bench(n, 1.0 if args.quick else args.seconds, 2.0 if args.quick else args.faiss_seconds)


if __name__ == "__main__":
    main()
