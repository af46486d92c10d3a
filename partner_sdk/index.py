"""In-memory PDQ index: exact Hamming-radius search by multi-index hashing (specs/matching.md 3).

Why multi-index hashing: a brute-force scan costs one popcount per stored hash per lookup
(faiss ``IndexBinaryFlat`` does this); at millions of hashes that is a few hundred lookups per
second. Split the 256 bits into ``m`` chunks. If two hashes differ in at most ``t`` bits, then
for any radii ``r_i`` with ``sum(r_i + 1) >= t + 1`` some chunk ``i`` differs in at most ``r_i``
bits (pigeonhole). So the candidates are the stored hashes whose chunk ``i`` lies within
``r_i`` of the query's chunk ``i`` for some ``i``: a few thousand table probes instead of
millions of comparisons. Each candidate is then verified with an exact popcount, so results
are exactly the brute-force results for every threshold 0..256 (above the tables' useful
range a segment simply scans).

Rows live in flat NumPy arrays (four big-endian uint64 words per hash, an int64 key, a
uint8 quality, a live flag). Keys are the store's log indexes and only ever grow, so rows
stay sorted by key and a withdrawal is a binary search plus a cleared live flag. New rows
first sit in a small brute-force tail, then become segments that merge like a binary counter;
dead rows are dropped when the index is compacted. No I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np
import numpy.typing as npt

__all__ = ["MAX_THRESHOLD", "Hits", "PdqIndex", "digests_to_words"]

MAX_THRESHOLD = 256
"""Every threshold up to the full width is exact (large ones scan)."""

WORDS = 4
_TAIL_ROWS = 4096  # rows kept outside any table and scanned by brute force
_MERGE_FACTOR = 4  # a segment merges into the previous one once it is >= 1/4 of its size
_QUERY_BLOCK = 32  # queries searched together (temporaries stay in L2: faster than 128)
_DEAD_RATIO = 0.25  # compact when this share of rows is withdrawn
_MIN_BITS, _MAX_BITS = 8, 24  # chunk widths: the dense tables hold 2**bits + 1 offsets

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


def digests_to_words(digests: bytes | npt.NDArray[np.uint8]) -> U64:
    """(n, 32) uint8 digests (or their concatenated bytes) -> (n, 4) native uint64 words."""
    raw = np.frombuffer(digests, dtype=np.uint8) if isinstance(digests, bytes) else digests
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1, 32)
    return raw.view(">u8").astype(np.uint64)


@dataclass(frozen=True, slots=True)
class Hits:
    """Matches of a batch of queries: parallel arrays, ordered by (query, key, row)."""

    query: I64  # position of the query in the batch
    key: I64  # the row's key (log index)
    distance: I64
    quality: npt.NDArray[np.uint8]
    row: I64  # row number (stable until the next compaction)

    def __len__(self) -> int:
        return len(self.key)


@lru_cache(maxsize=64)
def _masks(bits: int, radius: int) -> U64:
    """Every XOR mask of ``bits`` bits with popcount <= radius (the probe neighbourhood)."""
    out: list[int] = []
    for k in range(min(radius, bits) + 1):
        for ones in combinations(range(bits), k):
            out.append(sum(1 << b for b in ones))
    return np.array(out, dtype=np.uint64)


def _volume(bits: int, radius: int) -> int:
    return sum(math.comb(bits, k) for k in range(min(radius, bits) + 1)) if radius >= 0 else 0


def _widths(chunks: int) -> list[int]:
    base, extra = divmod(256, chunks)
    return [base + 1] * extra + [base] * (chunks - extra)


def choose_chunks(rows: int, threshold: int = 31) -> int:
    """The chunk count minimising probes + expected candidates for ``rows`` uniform hashes."""
    best, best_cost = 16, math.inf
    for m in range(math.ceil(256 / _MAX_BITS), 256 // _MIN_BITS + 1):
        widths = _widths(m)
        radii = _radii(m, threshold)
        cost = 0.0
        for w, r in zip(widths, radii, strict=True):
            v = _volume(w, r)
            cost += v * (1.0 + rows / 2.0**w)
        cost += 0.5 * (1 << max(widths)) * m / 65536  # table memory, lightly
        if cost < best_cost:
            best, best_cost = m, cost
    return best


def _radii(chunks: int, threshold: int) -> list[int]:
    """Radii with sum(r + 1) == threshold + 1 (wider chunks first get the larger radius)."""
    base, extra = divmod(threshold + 1, chunks)
    return [base if i < extra else base - 1 for i in range(chunks)]


class _Layout:
    """Where each chunk's bits sit in the four words, and how to extract them vectorised."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.widths = _widths(chunks)
        k_a, sh_a, mask_a, n_b, k_b, sh_b, mask_b = ([] for _ in range(7))
        pos = 0
        for w in self.widths:
            k, o = divmod(pos, 64)
            na = min(w, 64 - o)
            nb = w - na
            k_a.append(k)
            sh_a.append(64 - o - na)
            mask_a.append((1 << na) - 1)
            n_b.append(nb)
            k_b.append(k + 1 if nb else 0)
            sh_b.append(64 - nb if nb else 0)
            mask_b.append((1 << nb) - 1 if nb else 0)
            pos += w
        self.k_a = np.array(k_a, dtype=np.intp)
        self.sh_a = np.array(sh_a, dtype=np.uint64)
        self.mask_a = np.array(mask_a, dtype=np.uint64)
        self.n_b = np.array(n_b, dtype=np.uint64)
        self.k_b = np.array(k_b, dtype=np.intp)
        self.sh_b = np.array(sh_b, dtype=np.uint64)
        self.mask_b = np.array(mask_b, dtype=np.uint64)
        ends = np.cumsum(self.widths)
        self._shifts = [
            (256 - int(e), (1 << w) - 1) for e, w in zip(ends, self.widths, strict=True)
        ]
        sizes = [(1 << w) + 1 for w in self.widths]
        self.table_base = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        self.table_size = int(sum(sizes))
        self._plans: dict[int, tuple[npt.NDArray[np.intp], U64, I64]] = {}

    def values(self, words: U64) -> U64:
        """(n, 4) words -> (n, m) chunk values."""
        a = (np.take(words, self.k_a, axis=1) >> self.sh_a) & self.mask_a
        b = (np.take(words, self.k_b, axis=1) >> self.sh_b) & self.mask_b
        return (a << self.n_b) | b

    def values_one(self, words: U64) -> U64:
        """One query's (4,) words -> (m,) chunk values."""
        x = int.from_bytes(words.astype(">u8").tobytes(), "big")
        return np.array([(x >> s) & k for s, k in self._shifts], dtype=np.uint64)

    def plan(self, threshold: int) -> tuple[npt.NDArray[np.intp], U64, I64]:
        """Probe plan for a threshold: (chunk of each probe, XOR mask, table base)."""
        found = self._plans.get(threshold)
        if found is None:
            chunk, mask = [], []
            for i, (w, r) in enumerate(
                zip(self.widths, _radii(self.chunks, threshold), strict=True)
            ):
                if r < 0:
                    continue
                m = _masks(w, r)
                chunk.append(np.full(len(m), i, dtype=np.intp))
                mask.append(m)
            c = np.concatenate(chunk)
            found = (c, np.concatenate(mask), self.table_base[c])
            self._plans[threshold] = found
        return found

    def probes(self, threshold: int) -> int:
        return len(self.plan(threshold)[0])


class _Segment:
    """Dense per-chunk tables over rows [start, end): CSR offsets by chunk value, row numbers."""

    def __init__(self, words: U64, start: int, end: int, chunks: int) -> None:
        self.start, self.end = start, end
        self.layout = _Layout(chunks)
        n = end - start
        row_dtype = np.uint32
        values = self.layout.values(words[start:end])  # (n, m)
        # int32 offsets halve the tables (cache misses dominate lookups) while they fit.
        off_dtype = np.int32 if n * chunks < 2**31 else np.int64
        offsets: npt.NDArray[np.int64] = np.empty(self.layout.table_size, dtype=off_dtype)
        postings = np.empty(n * chunks, dtype=row_dtype)
        for i, w in enumerate(self.layout.widths):
            col = values[:, i].astype(np.int64)
            base = int(self.layout.table_base[i])
            counts = np.bincount(col, minlength=1 << w)
            offsets[base] = i * n
            np.cumsum(counts, out=offsets[base + 1 : base + 1 + (1 << w)])
            offsets[base + 1 : base + 1 + (1 << w)] += i * n
            # Sorting (value << 32 | row) as one uint64 is several times faster than argsort.
            packed = (col.astype(np.uint64) << np.uint64(32)) | np.arange(n, dtype=np.uint64)
            packed.sort()
            postings[i * n : (i + 1) * n] = packed.astype(row_dtype)
        self.offsets = offsets
        self.postings = postings

    @property
    def rows(self) -> int:
        return self.end - self.start

    def nbytes(self) -> int:
        return int(self.offsets.nbytes + self.postings.nbytes)

    def candidates(self, qwords: U64, threshold: int) -> tuple[I64, I64]:
        """(query position, row) pairs that may be within ``threshold`` (duplicates possible)."""
        chunk, mask, base = self.layout.plan(threshold)
        if len(qwords) == 1:  # Python ints beat a dozen tiny NumPy calls for one query
            values1 = self.layout.values_one(qwords[0])
            probe = (values1[chunk] ^ mask).astype(np.int64)
            probe += base
        else:
            values = self.layout.values(qwords)  # (q, m)
            probe = (np.take(values, chunk, axis=1) ^ mask).astype(np.int64)  # (q, p)
            probe += base
        probe = probe.ravel()
        starts = self.offsets[probe].astype(np.int64)
        lengths = self.offsets[probe + 1] - starts
        hit = np.flatnonzero(lengths)  # many probes find an empty bucket
        lengths = lengths[hit]
        total = int(lengths.sum())
        if total == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        # Positions of every posting of the hit buckets: a run of +1 steps that jumps to the
        # next bucket's start where the previous bucket ends (one cumsum, no repeat).
        starts = starts[hit]
        step = np.ones(total, dtype=np.int64)
        step[0] = starts[0]
        if len(hit) > 1:
            first = np.cumsum(lengths[:-1])
            step[first] = starts[1:] - (starts[:-1] + lengths[:-1]) + 1
        idx = np.cumsum(step)
        rows = np.take(self.postings, idx).astype(np.int64)
        if self.start:
            rows += self.start
        if len(qwords) == 1:
            return np.zeros(total, dtype=np.int64), rows
        per_query = np.bincount(hit // len(chunk), weights=lengths, minlength=len(qwords))
        return np.repeat(np.arange(len(qwords), dtype=np.int64), per_query.astype(np.int64)), rows


class PdqIndex:
    """Exact search of 256-bit hashes within a Hamming threshold; keys are non-decreasing ints.

    ``add`` appends rows (keys must not be smaller than the last key added), ``remove``
    withdraws every row of the given keys; both take effect at once, without a rebuild.
    """

    def __init__(self, *, chunks: int | None = None) -> None:
        self._fixed_chunks = chunks
        self._words: U64 = np.zeros((0, WORDS), dtype=np.uint64)
        self._keys: I64 = np.zeros(0, dtype=np.int64)
        self._quality = np.zeros(0, dtype=np.uint8)
        self._live = np.zeros(0, dtype=bool)
        self._n = 0
        self._dead = 0
        self._segments: list[_Segment] = []
        self.compactions = 0

    # -- contents -------------------------------------------------------------------------

    def __len__(self) -> int:
        """Live rows."""
        return self._n - self._dead

    @property
    def rows(self) -> int:
        """Rows held, withdrawn ones included until the next compaction."""
        return self._n

    @property
    def last_key(self) -> int:
        return int(self._keys[self._n - 1]) if self._n else -1

    def segments(self) -> list[int]:
        """Row counts of the table segments, then of the brute-force tail."""
        covered = self._segments[-1].end if self._segments else 0
        return [s.rows for s in self._segments] + [self._n - covered]

    def nbytes(self) -> int:
        arrays = self._words.nbytes + self._keys.nbytes + self._quality.nbytes + self._live.nbytes
        return int(arrays + sum(s.nbytes() for s in self._segments))

    def add(
        self,
        words: U64,
        keys: Sequence[int] | I64,
        qualities: Sequence[int] | npt.NDArray[np.uint8],
    ) -> None:
        """Append rows; ``words`` from :func:`digests_to_words`, keys non-decreasing."""
        k = np.asarray(keys, dtype=np.int64)
        q = np.asarray(qualities, dtype=np.uint8)
        if words.ndim != 2 or words.shape[1] != WORDS or not len(words) == len(k) == len(q):
            raise ValueError("add() needs (n, 4) words and n keys and n qualities")
        if len(k) == 0:
            return
        if np.any(np.diff(k) < 0) or int(k[0]) < self.last_key:
            raise ValueError("keys must be added in non-decreasing order")
        self._reserve(self._n + len(k))
        end = self._n + len(k)
        self._words[self._n : end] = words
        self._keys[self._n : end] = k
        self._quality[self._n : end] = q
        self._live[self._n : end] = True
        self._n = end
        self._settle()

    def remove(self, keys: Sequence[int] | I64) -> int:
        """Withdraw every live row whose key is in ``keys``; returns how many rows."""
        k = np.unique(np.asarray(keys, dtype=np.int64))
        if len(k) == 0 or self._n == 0:
            return 0
        held = self._keys[: self._n]
        lo = np.searchsorted(held, k, side="left")
        hi = np.searchsorted(held, k, side="right")
        removed = 0
        for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
            if a < b:
                removed += int(self._live[a:b].sum())
                self._live[a:b] = False
        self._dead += removed
        if self._dead > _DEAD_RATIO * self._n and self._dead > _TAIL_ROWS:
            self.compact()
        return removed

    def rows_of(self, key: int) -> tuple[U64, npt.NDArray[np.uint8]]:
        """Live words and qualities of one key, in the order they were added."""
        held = self._keys[: self._n]
        a = int(np.searchsorted(held, key, side="left"))
        b = int(np.searchsorted(held, key, side="right"))
        live = self._live[a:b]
        return self._words[a:b][live], self._quality[a:b][live]

    def compact(self) -> None:
        """Drop withdrawn rows and rebuild every table (one segment plus the tail)."""
        live = self._live[: self._n]
        self._words = np.ascontiguousarray(self._words[: self._n][live])
        self._keys = self._keys[: self._n][live].copy()
        self._quality = self._quality[: self._n][live].copy()
        self._n = len(self._keys)
        self._live = np.ones(self._n, dtype=bool)
        self._dead = 0
        self._segments = []
        if self._n > _TAIL_ROWS:
            self._segments = [self._segment(0, self._n)]
        self.compactions += 1

    def _segment(self, start: int, end: int) -> _Segment:
        chunks = self._fixed_chunks or choose_chunks(end - start)
        return _Segment(self._words, start, end, chunks)

    def _reserve(self, size: int) -> None:
        if size <= len(self._keys):
            return
        cap = max(size, int(len(self._keys) * 1.25) + 1024)
        for name in ("_words", "_keys", "_quality", "_live"):
            old = getattr(self, name)
            new = np.zeros((cap, *old.shape[1:]), dtype=old.dtype)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    def _settle(self) -> None:
        """Tables for a full tail; merge segments like a binary counter (amortised n log n)."""
        covered = self._segments[-1].end if self._segments else 0
        if self._n - covered <= _TAIL_ROWS:
            return
        self._segments.append(self._segment(covered, self._n))
        while len(self._segments) >= 2:
            last, prev = self._segments[-1], self._segments[-2]
            if last.rows * _MERGE_FACTOR < prev.rows:
                break
            self._segments[-2:] = [self._segment(prev.start, last.end)]

    # -- search ---------------------------------------------------------------------------

    def search(self, query: U64, threshold: int) -> Hits:
        """Every live row within ``threshold`` bits of each query row ((q, 4) words)."""
        if not 0 <= threshold <= MAX_THRESHOLD:
            raise ValueError(f"threshold must be between 0 and {MAX_THRESHOLD}")
        if query.ndim != 2 or query.shape[1] != WORDS:
            raise ValueError("queries are (q, 4) uint64 words")
        if len(query) <= _QUERY_BLOCK:
            return self._search_block(query, threshold)
        parts = [
            self._search_block(query[i : i + _QUERY_BLOCK], threshold)
            for i in range(0, len(query), _QUERY_BLOCK)
        ]
        return Hits(
            np.concatenate([p.query + i * _QUERY_BLOCK for i, p in enumerate(parts)]),
            np.concatenate([p.key for p in parts]),
            np.concatenate([p.distance for p in parts]),
            np.concatenate([p.quality for p in parts]),
            np.concatenate([p.row for p in parts]),
        )

    def _search_block(self, query: U64, threshold: int) -> Hits:
        qs: list[I64] = []
        rs: list[I64] = []
        for seg in self._segments:
            if seg.layout.probes(threshold) * 2 >= seg.rows:  # the tables would not help
                q, r = self._scan(query, seg.start, seg.end)
            else:
                q, r = seg.candidates(query, threshold)
            qs.append(q)
            rs.append(r)
        covered = self._segments[-1].end if self._segments else 0
        if covered < self._n:
            q, r = self._scan(query, covered, self._n)
            qs.append(q)
            rs.append(r)
        return self._verify(query, qs, rs, threshold)

    def _scan(self, query: U64, start: int, end: int) -> tuple[I64, I64]:
        n = end - start
        q = np.repeat(np.arange(len(query), dtype=np.int64), n)
        r = np.tile(np.arange(start, end, dtype=np.int64), len(query))
        return q, r

    def _verify(self, query: U64, qs: list[I64], rs: list[I64], threshold: int) -> Hits:
        if len(rs) == 1:  # one segment, no tail: the common case after a load
            q, r = qs[0], rs[0]
        else:
            q = np.concatenate(qs) if qs else np.zeros(0, dtype=np.int64)
            r = np.concatenate(rs) if rs else np.zeros(0, dtype=np.int64)
        if len(r):
            # np.take: fancy indexing of 2-D rows is ~30x slower here (numpy's slow path).
            if len(query) == 1:
                x = np.take(self._words, r, axis=0) ^ query[0]
            else:
                x = np.take(self._words, r, axis=0) ^ np.take(query, q, axis=0)
            b = np.bitwise_count(x)
            d = b[:, 0].astype(np.int64) + b[:, 1] + b[:, 2] + b[:, 3]
            keep = d <= threshold
            if self._dead:
                keep &= self._live[r]
            q, r, d = q[keep], r[keep], d[keep]
            if len(r) > 1:
                pair = q * max(self._n, 1) + r
                pair, first = np.unique(pair, return_index=True)
                q, r, d = q[first], r[first], d[first]
        else:
            d = np.zeros(0, dtype=np.int64)
        return Hits(q, self._keys[r], d, self._quality[r], r)
