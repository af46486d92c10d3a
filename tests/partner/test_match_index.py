"""partner_sdk.index: identical results to brute force (ids and distances) on random and on
clustered hashes, at every threshold asked, through incremental adds and withdrawals."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partner_sdk.index import PdqIndex, choose_chunks, digests_to_words

U64 = npt.NDArray[np.uint64]


def random_words(rng: np.random.Generator, n: int) -> U64:
    return digests_to_words(rng.integers(0, 256, (n, 32), dtype=np.uint8))


def flip(rng: np.random.Generator, words: U64, max_bits: int) -> U64:
    """Each row with 0..max_bits random bits flipped (near-duplicates)."""
    out = words.copy()
    for i in range(len(out)):
        for bit in rng.choice(256, int(rng.integers(0, max_bits + 1)), replace=False):
            out[i, bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    return out


def clustered(rng: np.random.Generator, n: int) -> U64:
    """A few hundred base hashes, each with many near-duplicates 0..40 bits away."""
    bases = random_words(rng, max(1, n // 40))
    return flip(rng, bases[rng.integers(0, len(bases), n)], 40)


def brute(
    words: U64, keys: npt.NDArray[np.int64], live: npt.NDArray[np.bool_], q: U64, t: int
) -> set[tuple[int, int, int]]:
    out: set[tuple[int, int, int]] = set()
    for i, row in enumerate(q):
        d = np.bitwise_count(words ^ row).sum(axis=1)
        for r in np.nonzero((d <= t) & live)[0]:
            out.add((i, int(keys[r]), int(d[r])))
    return out


def found(index: PdqIndex, q: U64, t: int) -> set[tuple[int, int, int]]:
    hits = index.search(q, t)
    got = list(zip(hits.query.tolist(), hits.key.tolist(), hits.distance.tolist(), strict=True))
    assert len(got) == len(set(got)), "a row was reported twice"
    return set(got)


def queries(rng: np.random.Generator, words: U64) -> U64:
    near = flip(rng, words[rng.integers(0, len(words), 40)], 48)
    return np.vstack([near, random_words(rng, 10)])


CASES = [
    (dist, t, chunks)
    for dist in ("random", "clustered")
    for t in (0, 16, 31, 48)
    for chunks in (None, 12, 16)
]


@pytest.mark.parametrize(
    ("dist", "t", "chunks"), CASES, ids=[f"{d}/t{t}/m{c or 'auto'}" for d, t, c in CASES]
)
def test_exact_against_brute_force(dist: str, t: int, chunks: int | None) -> None:
    rng = np.random.default_rng(t * 7 + (chunks or 0))
    n = 30_000
    words = random_words(rng, n) if dist == "random" else clustered(rng, n)
    keys = np.arange(n, dtype=np.int64) * 3
    index = PdqIndex(chunks=chunks)
    index.add(words, keys, np.full(n, 90))
    q = queries(rng, words)
    live = np.ones(n, dtype=bool)
    assert found(index, q, t) == brute(words, keys, live, q, t)
    # single-query path too
    for i in (0, 5, 45):
        assert found(index, q[i : i + 1], t) == {
            (0, k, d) for (j, k, d) in brute(words, keys, live, q, t) if j == i
        }


@pytest.mark.parametrize("dist", ["random", "clustered"])
def test_threshold_63_and_beyond_small_set(dist: str) -> None:
    rng = np.random.default_rng(63)
    n = 6000
    words = random_words(rng, n) if dist == "random" else clustered(rng, n)
    keys = np.arange(n, dtype=np.int64)
    index = PdqIndex(chunks=16)
    index.add(words, keys, np.full(n, 70))
    q = queries(rng, words)
    live = np.ones(n, dtype=bool)
    for t in (63, 100, 256):
        assert found(index, q, t) == brute(words, keys, live, q, t)


def test_incremental_adds_and_withdrawals_equal_full_rebuild() -> None:
    rng = np.random.default_rng(5)
    n = 40_000
    words = clustered(rng, n)
    keys = np.arange(n, dtype=np.int64)
    index = PdqIndex()
    live = np.zeros(n, dtype=bool)
    pos = 0
    withdrawn: list[int] = []
    for size in (5000, 1, 700, 4096, 9000, 3, 12_000, 2000, 7200):
        index.add(words[pos : pos + size], keys[pos : pos + size], np.full(size, 80))
        live[pos : pos + size] = True
        pos += size
        gone = rng.choice(pos, 600, replace=False)
        index.remove(gone)
        live[gone] = False
        withdrawn += gone.tolist()
    assert pos == n
    assert len(index) == int(live.sum())
    assert len(index.segments()) > 1  # really incremental, several segments and a tail
    full = PdqIndex()
    full.add(words[live], keys[live], np.full(int(live.sum()), 80))
    q = queries(rng, words)
    for t in (0, 16, 31, 48):
        expected = brute(words, keys, live, q, t)
        assert found(index, q, t) == expected == found(full, q, t)
    index.compact()
    assert index.segments()[-1] <= 4096 and len(index) == int(live.sum())
    assert found(index, q, 31) == brute(words, keys, live, q, 31)
    # withdrawing again is a no-op; unknown keys too
    assert index.remove([*withdrawn[:10], 10**9]) == 0


def test_rows_of_and_keys_with_many_rows() -> None:
    rng = np.random.default_rng(9)
    words = random_words(rng, 10)
    index = PdqIndex()
    index.add(words, [1, 1, 1, 4, 4, 7, 7, 7, 7, 9], range(50, 60))
    got, qualities = index.rows_of(7)
    assert (got == words[5:9]).all() and qualities.tolist() == [55, 56, 57, 58]
    assert index.remove([7]) == 4 and len(index) == 6
    assert len(index.rows_of(7)[0]) == 0
    assert found(index, words[5:6], 0) == set()
    assert found(index, words[3:4], 0) == {(0, 4, 0)}


@pytest.mark.parametrize(
    "bad",
    [
        "keys-decrease",
        "keys-below-last",
        "shape",
        "threshold-negative",
        "threshold-too-big",
        "query-shape",
    ],
)
def test_refusals(bad: str) -> None:
    rng = np.random.default_rng(1)
    index = PdqIndex()
    index.add(random_words(rng, 3), [5, 6, 7], [90, 90, 90])
    w = random_words(rng, 2)
    with pytest.raises(ValueError):
        if bad == "keys-decrease":
            index.add(w, [9, 8], [1, 1])
        elif bad == "keys-below-last":
            index.add(w, [1, 2], [1, 1])
        elif bad == "shape":
            index.add(w, [9], [1, 1])
        elif bad == "threshold-negative":
            index.search(w, -1)
        elif bad == "threshold-too-big":
            index.search(w, 257)
        else:
            index.search(np.zeros((2, 3), dtype=np.uint64), 31)


def test_chunk_choice_grows_chunks_with_size() -> None:
    assert choose_chunks(1_000) >= choose_chunks(1_000_000) >= choose_chunks(10_000_000) >= 11


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    t=st.integers(0, 64),
    chunks=st.sampled_from([11, 13, 16, 20, 32]),
    n=st.integers(0, 9000),
)
def test_property_exact(seed: int, t: int, chunks: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    words = clustered(rng, n) if n else random_words(rng, 0)
    keys = np.arange(n, dtype=np.int64)
    index = PdqIndex(chunks=chunks)
    index.add(words, keys, np.zeros(n, dtype=np.uint8))
    q = queries(rng, words) if n else random_words(rng, 3)
    assert found(index, q, t) == brute(words, keys, np.ones(n, dtype=bool), q, t)
