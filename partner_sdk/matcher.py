"""Match a platform's uploads against the local store, with no network (specs/matching.md).

Why local: the hub must never learn what a platform uploaded or matched (DESIGN.md flow 8),
so every lookup runs here, over the store that sync verified. Candidates then pass the
partner's own defences (:mod:`partner_sdk.defences`: false-positive marks, flood quarantine,
allow list), which live in their own file. PDQ hashes and vPDQ frame hashes
sit in memory in exact multi-indexes (:mod:`partner_sdk.index`); MD5/SHA-256 are looked up in
the store's own ``ix_entries_hash`` index. The store is read, never written: ``refresh()``
applies what sync added or withdrew since the cursor this matcher last saw.

Matches are candidates for human review, not verdicts: each carries the distance and the
quality so that the platform applies its own policy.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import numpy.typing as npt

from hashing import (
    MATCH_THRESHOLD,
    Dihedral,
    FileDigests,
    HashingError,
    Kind,
    PdqHash,
    VpdqFeature,
    digest_stream,
    hash_image,
    hash_image_dihedral,
    hash_video,
    match_features,
    sniff,
)
from hashing.image import DEFAULT_MAX_PIXELS
from hashing.vpdq import QUALITY_THRESHOLD, QUERY_MATCH_PERCENT, VideoLimits
from partner_sdk.defences import Defences
from partner_sdk.errors import StoreError, UsageError
from partner_sdk.index import PdqIndex, digests_to_words
from partner_sdk.servelimits import PixelBudget, declared_pixels

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "TRANSFORMS",
    "ExactDigest",
    "FileResult",
    "Match",
    "Matcher",
    "Query",
    "VideoQuery",
]

STORE_FILE = "store.sqlite3"
STORE_VERSION = 1
DEFAULT_MAX_FILE_BYTES = 4 << 30
"""Files above 4 GiB are refused (MediaTooLargeError) rather than read forever."""

TRANSFORMS = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flip_x",
    "flip_y",
    "flip_plus1",
    "flip_minus1",
)
"""Names of the eight dihedral hashes, in :class:`hashing.Dihedral` order."""

Algorithm = Literal["pdq", "md5", "sha256", "vpdq"]


@dataclass(frozen=True, slots=True)
class Match:
    """One candidate: the store entry (log index) and how close it is.

    ``distance`` is in PDQ bits (0 for MD5/SHA-256; for vPDQ the closest frame pair);
    ``quality`` is the stored entry's PDQ quality (for vPDQ the lowest quality among the
    video's frames; None for MD5/SHA-256). ``transform`` names the rotation or flip of the
    upload that matched when rotation-tolerant lookup found it; vPDQ results carry both
    percentages (reference rule: hashing.match_features).
    """

    log_index: int
    algorithm: Algorithm
    distance: int
    quality: int | None
    transform: str | None = None
    query_match_percent: float | None = None
    candidate_match_percent: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "log_index": self.log_index,
            "algorithm": self.algorithm,
            "distance": self.distance,
            "quality": self.quality,
        }
        if self.transform is not None:
            out["transform"] = self.transform
        if self.query_match_percent is not None:
            out["query_match_percent"] = round(self.query_match_percent, 3)
            out["candidate_match_percent"] = round(self.candidate_match_percent or 0.0, 3)
        return out


@dataclass(frozen=True, slots=True)
class FileResult:
    """What one upload matched. ``error`` says why no perceptual hash could be made (the
    MD5/SHA-256 lookups still ran); ``quality`` is the upload's PDQ quality (images),
    ``frames`` the number of its video frames that count for matching."""

    kind: str
    matches: tuple[Match, ...]
    quality: int | None = None
    frames: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "quality": self.quality}
        if self.frames is not None:
            out["frames"] = self.frames
        if self.error is not None:
            out["error"] = self.error
        out["matches"] = [m.to_json() for m in self.matches]
        return out


@dataclass(frozen=True, slots=True)
class ExactDigest:
    """An MD5 (16 bytes) or SHA-256 (32 bytes) digest to look up exactly."""

    algorithm: Literal["md5", "sha256"]
    digest: bytes

    def __post_init__(self) -> None:
        size = {"md5": 16, "sha256": 32}.get(self.algorithm)
        if size is None or not isinstance(self.digest, bytes) or len(self.digest) != size:
            raise ValueError("an exact digest is md5 (16 bytes) or sha256 (32 bytes)")


@dataclass(frozen=True, slots=True)
class VideoQuery:
    """A video's vPDQ features (from hashing.hash_video)."""

    features: tuple[VpdqFeature, ...] = field(default=())


Query = PdqHash | Dihedral | FileDigests | ExactDigest | VideoQuery
"""What :meth:`Matcher.match_hashes` accepts."""


def _prepared_frames(features: Iterable[tuple[bytes, int]]) -> list[tuple[bytes, int]]:
    """The reference's frame selection: unique hashes (first kept), then quality >= 50."""
    seen: set[bytes] = set()
    out: list[tuple[bytes, int]] = []
    for digest, quality in features:
        if digest in seen:
            continue
        seen.add(digest)
        if quality >= QUALITY_THRESHOLD:
            out.append((digest, quality))
    return out


class Matcher:
    """Exact lookups over a partner store; thread-safe; never opens a network connection.

    ``Matcher(dir)`` reads ``dir/store.sqlite3`` (read-only) and builds the indexes;
    ``refresh()`` applies later syncs incrementally. ``threshold`` is the PDQ (and vPDQ frame)
    distance, inclusive; ``rotations`` also looks up the seven rotations/flips of images;
    a video is reported when at least ``video_query_percent`` of the upload's frames and
    ``video_candidate_percent`` of the stored video's frames match.

    ``max_pixels`` bounds what one picture (or one video frame) may decode to; with a
    ``pixel_budget`` (the match service) each upload also reserves its declared pixels from
    that shared total before decoding, and gets :class:`~partner_sdk.servelimits.Busy` when
    there is no room.

    ``defences`` screens every answer (specs/partner-defences.md): ``True`` (the default)
    opens ``dir/defences.sqlite3`` with the default flood policy, a :class:`Defences` uses
    that one (the matcher does not close it), ``False`` returns raw candidates.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        threshold: int = MATCH_THRESHOLD,
        rotations: bool = False,
        video_query_percent: float = QUERY_MATCH_PERCENT,
        video_candidate_percent: float = 0.0,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        chunks: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        pixel_budget: PixelBudget | None = None,
        defences: Defences | bool = True,
    ) -> None:
        _check_threshold(threshold)
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
            raise UsageError("max_pixels is a positive integer")
        self.max_pixels = max_pixels
        self.pixel_budget = pixel_budget
        self.threshold = threshold
        self.rotations = rotations
        self.video_query_percent = video_query_percent
        self.video_candidate_percent = video_candidate_percent
        self.max_file_bytes = max_file_bytes
        self._chunks = chunks
        path = Path(directory) / STORE_FILE
        if not path.is_file():
            raise UsageError(f"no store in {directory}: run 'ncii-partner sync' first")
        try:
            self._conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro",
                uri=True,
                check_same_thread=False,
                isolation_level=None,
            )
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store {path}: {exc}") from None
        if version != STORE_VERSION:
            self._conn.close()
            raise StoreError(f"{path} has store schema {version}; this SDK knows 1")
        self._lock = threading.RLock()
        self.cursor = 0
        self.checkpoint_size: int | None = None
        self.build_seconds = 0.0
        self.refresh_seconds = 0.0
        self.refreshes = 0
        self._pdq = PdqIndex(chunks=chunks)
        self._frames = PdqIndex(chunks=chunks)
        self._own_defences = defences is True
        self.defences: Defences | None = None
        try:
            if isinstance(defences, Defences):
                self.defences = defences
            elif defences:
                self.defences = Defences(directory)
            self._rebuild()
        except BaseException:
            self.close()
            raise

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            if self._own_defences and self.defences is not None:
                self.defences.close()

    def __enter__(self) -> Matcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, sql: str, args: Sequence[object] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store: {exc}") from None

    def _state(self) -> tuple[int, int | None]:
        row = self._read("SELECT cursor, checkpoint_size FROM sync_state WHERE id = 1")
        if not row:
            raise StoreError("the store has no sync state")
        return int(row[0][0]), None if row[0][1] is None else int(row[0][1])

    def _load(self, pdq: PdqIndex, frames: PdqIndex, start: int, end: int | None) -> None:
        """Add the live hashes of log indexes [start, end) to the indexes."""
        args = (start, 2**62 if end is None else end)
        rows = self._read(
            "SELECT log_index, hash, quality FROM entries WHERE algorithm = 'pdq' "
            "AND hash IS NOT NULL AND log_index >= ? AND log_index < ? ORDER BY log_index",
            args,
        )
        if rows:
            pdq.add(
                digests_to_words(b"".join(bytes(r[1]) for r in rows)),
                np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
                np.fromiter((r[2] or 0 for r in rows), dtype=np.uint8, count=len(rows)),
            )
        frame_rows = self._read(
            "SELECT log_index, hash, quality FROM vpdq_frames "
            "WHERE log_index >= ? AND log_index < ? ORDER BY log_index, frame",
            args,
        )
        keys: list[int] = []
        digests: list[bytes] = []
        qualities: list[int] = []
        i = 0
        while i < len(frame_rows):
            j = i
            while j < len(frame_rows) and frame_rows[j][0] == frame_rows[i][0]:
                j += 1
            kept = _prepared_frames((bytes(r[1]), int(r[2])) for r in frame_rows[i:j])
            keys.extend([int(frame_rows[i][0])] * len(kept))
            digests.extend(d for d, _ in kept)
            qualities.extend(q for _, q in kept)
            i = j
        if keys:
            frames.add(digests_to_words(b"".join(digests)), keys, qualities)

    def _rebuild(self) -> None:
        started = time.perf_counter()
        pdq, frames = PdqIndex(chunks=self._chunks), PdqIndex(chunks=self._chunks)
        with self._lock:
            try:
                self._conn.execute("BEGIN")  # one snapshot: cursor and rows agree
                cursor, size = self._state()
                self._load(pdq, frames, 0, None)
            finally:
                self._conn.execute("COMMIT")
            self._pdq, self._frames = pdq, frames
            self.cursor, self.checkpoint_size = cursor, size
            self._forget_withdrawn()
        self.build_seconds = time.perf_counter() - started

    def _forget_withdrawn(self) -> None:
        """Marks and counts of entries the store has withdrawn go too (a withdrawal erases)."""
        if self.defences is None:
            return
        tracked = sorted(self.defences.tracked())
        if not tracked:
            return
        rows = self._read(
            "SELECT withdraws FROM entries WHERE kind = 2 AND withdraws IN "
            "(SELECT value FROM json_each(?))",
            (json.dumps(tracked),),
        )
        self.defences.forget(int(r[0]) for r in rows)

    def refresh(self) -> bool:
        """Apply what sync changed since the last look; True when something changed.

        Additions are appended and withdrawals (tombstones at or after the old cursor) are
        removed in place; a store whose cursor went back (replaced) is rebuilt in full.
        """
        with self._lock:
            cursor, size = self._state()
            if cursor == self.cursor:
                self.checkpoint_size = size
                return False
            if cursor < self.cursor:
                self._rebuild()
                return True
            started = time.perf_counter()
            try:
                self._conn.execute("BEGIN")
                cursor, size = self._state()
                old = self.cursor
                self._load(self._pdq, self._frames, old, cursor)
                gone = [
                    int(r[0])
                    for r in self._read(
                        "SELECT withdraws FROM entries WHERE kind = 2 AND log_index >= ? "
                        "AND log_index < ?",
                        (old, cursor),
                    )
                ]
            finally:
                self._conn.execute("COMMIT")
            if gone:
                self._pdq.remove(gone)
                self._frames.remove(gone)
                if self.defences is not None:
                    self.defences.forget(gone)
            self.cursor, self.checkpoint_size = cursor, size
            self.refreshes += 1
            self.refresh_seconds = time.perf_counter() - started
            return True

    def stats(self) -> dict[str, Any]:
        """Index sizes, cursor and timings (for ``/stats``); no hash values."""
        with self._lock:
            exact = dict(
                self._read(
                    "SELECT algorithm, count(*) FROM entries WHERE hash IS NOT NULL "
                    "AND algorithm IN ('md5', 'sha256') GROUP BY algorithm"
                )
            )
            videos = self._read("SELECT count(DISTINCT log_index) FROM vpdq_frames")[0][0]
            return {
                "v": 1,
                "cursor": self.cursor,
                "checkpoint_size": self.checkpoint_size,
                "pdq": len(self._pdq),
                "vpdq_videos": int(videos),
                "vpdq_frames": len(self._frames),
                "md5": int(exact.get("md5", 0)),
                "sha256": int(exact.get("sha256", 0)),
                "index_bytes": self._pdq.nbytes() + self._frames.nbytes(),
                "segments": {"pdq": self._pdq.segments(), "vpdq": self._frames.segments()},
                "build_seconds": round(self.build_seconds, 6),
                "refreshes": self.refreshes,
                "last_refresh_seconds": round(self.refresh_seconds, 6),
                "threshold": self.threshold,
                "defences": None if self.defences is None else self.defences.summary(),
            }

    # -- lookups --------------------------------------------------------------------------

    def match_hashes(
        self, queries: Sequence[Query], *, threshold: int | None = None
    ) -> list[tuple[Match, ...]]:
        """Look up many hashes at once (PDQ queries are searched together, in one batch)."""
        t = self.threshold if threshold is None else threshold
        _check_threshold(t)
        pdq_rows: list[bytes] = []
        owner: list[tuple[int, int]] = []  # (query position, transform) per PDQ row
        for pos, q in enumerate(queries):
            if isinstance(q, PdqHash):
                pdq_rows.append(q.digest)
                owner.append((pos, -1))
            elif isinstance(q, Dihedral):
                for k, h in enumerate(q):
                    pdq_rows.append(h.digest)
                    owner.append((pos, k))
        results: list[list[Match]] = [[] for _ in queries]
        with self._lock:
            if pdq_rows:
                self._pdq_lookup(pdq_rows, owner, t, results)
            for pos, q in enumerate(queries):
                if isinstance(q, FileDigests):
                    results[pos] += self._exact("md5", q.md5) + self._exact("sha256", q.sha256)
                elif isinstance(q, ExactDigest):
                    results[pos] += self._exact(q.algorithm, q.digest)
                elif isinstance(q, VideoQuery):
                    results[pos] += self._video(q.features, t)
            if self.defences is not None and any(results):
                kept = self.defences.screen(
                    queries,
                    [_identity(q) for q in queries],
                    results,
                    t,
                    self,
                    video_percents=(self.video_query_percent, self.video_candidate_percent),
                )
                results = [[r[i] for i in k] for r, k in zip(results, kept, strict=True)]
        return [tuple(r) for r in results]

    def pdq_words(self, key: int) -> npt.NDArray[np.uint64]:
        """The live PDQ rows of one entry (for the defences' allow-list check)."""
        return self._pdq.rows_of(key)[0]

    def video_features(self, key: int) -> list[VpdqFeature]:
        """The kept frames of one live vPDQ entry (for the defences' allow-list check)."""
        words, qualities = self._frames.rows_of(key)
        return [
            VpdqFeature(i, int(q), PdqHash(words_to_digest(w), int(q)), 0.0)
            for i, (w, q) in enumerate(zip(words, qualities, strict=True))
        ]

    def _pdq_lookup(
        self, rows: list[bytes], owner: list[tuple[int, int]], t: int, out: list[list[Match]]
    ) -> None:
        hits = self._pdq.search(digests_to_words(b"".join(rows)), t)
        best: dict[tuple[int, int], Match] = {}
        for qi, key, dist, qual in zip(
            hits.query.tolist(),
            hits.key.tolist(),
            hits.distance.tolist(),
            hits.quality.tolist(),
            strict=True,
        ):
            pos, k = owner[qi]
            transform = None if k < 0 else TRANSFORMS[k]
            found = best.get((pos, key))
            # Keep the closest transform of each entry (the original on a tie).
            if found is None or dist < found.distance:
                best[(pos, key)] = Match(key, "pdq", dist, qual, transform)
        for (pos, _), m in sorted(best.items()):
            out[pos].append(m)

    def _exact(self, algorithm: str, digest: bytes) -> list[Match]:
        rows = self._read(
            "SELECT log_index FROM entries WHERE algorithm = ? AND hash = ? ORDER BY log_index",
            (algorithm, digest),
        )
        return [Match(int(r[0]), algorithm, 0, None) for r in rows]  # type: ignore[arg-type]

    def _video(self, features: Sequence[VpdqFeature], t: int) -> list[Match]:
        kept = _prepared_frames((f.hash.digest, f.quality) for f in features)
        if not kept:
            return []
        hits = self._frames.search(digests_to_words(b"".join(d for d, _ in kept)), t)
        closest: dict[int, int] = {}
        for key, dist in zip(hits.key.tolist(), hits.distance.tolist(), strict=True):
            closest[key] = min(dist, closest.get(key, dist))
        out: list[Match] = []
        for key in sorted(closest):
            words, qualities = self._frames.rows_of(key)
            candidate = [
                VpdqFeature(i, int(q), PdqHash(words_to_digest(w), int(q)), 0.0)
                for i, (w, q) in enumerate(zip(words, qualities, strict=True))
            ]
            verdict = match_features(features, candidate, distance_threshold=t)
            if verdict.is_match(self.video_query_percent, self.video_candidate_percent):
                out.append(
                    Match(
                        key,
                        "vpdq",
                        closest[key],
                        int(qualities.min()),
                        None,
                        verdict.query_match_percent,
                        verdict.candidate_match_percent,
                    )
                )
        return out

    def match_file(
        self, source: Path | str | BinaryIO, *, threshold: int | None = None
    ) -> FileResult:
        """Hash one file locally (digests, then PDQ or vPDQ by its content) and look it up."""
        if isinstance(source, str | Path):
            try:
                with open(source, "rb") as stream:
                    return self._match_stream(stream, threshold, None)
            except OSError as exc:
                raise UsageError(f"cannot read {source}: {exc.strerror}") from None
        return self._match_stream(source, threshold, None)

    def match_bytes(self, data: bytes, *, threshold: int | None = None) -> FileResult:
        """Like :meth:`match_file` for bytes in memory (the service's uploads)."""
        return self._match_stream(io.BytesIO(data), threshold, None)

    def match_image_bytes(self, data: bytes, *, threshold: int | None = None) -> FileResult:
        """An image's bytes: MD5/SHA-256 and PDQ (with rotations when enabled)."""
        return self._match_stream(io.BytesIO(data), threshold, Kind.IMAGE)

    def _match_stream(
        self, stream: BinaryIO, threshold: int | None, force: Kind | None
    ) -> FileResult:
        start = stream.tell()
        digests = digest_stream(stream, max_bytes=self.max_file_bytes)
        stream.seek(start)
        kind = force or sniff(stream).kind
        stream.seek(start)
        queries: list[Query] = [digests]
        quality: int | None = None
        frames: int | None = None
        error: str | None = None
        try:
            if kind is Kind.IMAGE:
                with self._pixels(stream, image=True) as limit:
                    if self.rotations:
                        dihedral = hash_image_dihedral(stream, max_pixels=limit)
                        quality = dihedral.quality
                        queries.append(dihedral)
                    else:
                        image = hash_image(stream, max_pixels=limit)
                        quality = image.quality
                        queries.append(image)
            elif kind is Kind.VIDEO:
                with self._pixels(stream, image=False) as limit:
                    features = hash_video(stream, limits=VideoLimits(max_frame_pixels=limit))
                frames = len(_prepared_frames((f.hash.digest, f.quality) for f in features))
                queries.append(VideoQuery(tuple(features)))
        except HashingError as exc:
            error = f"{type(exc).__name__}: {exc}"
        found = self.match_hashes(queries, threshold=threshold)
        matches = tuple(m for part in found for m in part)
        return FileResult(kind.value, matches, quality, frames, error)

    @contextmanager
    def _pixels(self, stream: BinaryIO, *, image: bool) -> Iterator[int]:
        """The ``max_pixels`` to hash with, reserved from the budget while decoding.

        A picture reserves what its header declares (hashing reads the same header with the
        same Pillow and refuses more); a video reserves its frame limit. A picture declaring
        more than ``max_pixels`` reserves nothing: hashing refuses it before decoding.
        """
        cap = self.max_pixels if image else min(self.max_pixels, VideoLimits().max_frame_pixels)
        declared = declared_pixels(stream) if image and self.pixel_budget is not None else None
        if self.pixel_budget is None or (declared is not None and declared > cap):
            yield cap
            return
        with self.pixel_budget.reserve(cap if declared is None else declared) as reserved:
            yield reserved


def _identity(query: Query) -> bytes:
    """Bytes that stand for one upload in the flood counter (only their keyed hash is kept):
    its PDQ (the original orientation), its SHA-256, or a digest of its vPDQ frames."""
    if isinstance(query, PdqHash):
        return b"pdq:" + query.digest
    if isinstance(query, Dihedral):
        return b"pdq:" + query.original.digest
    if isinstance(query, FileDigests):
        return b"sha256:" + query.sha256
    if isinstance(query, ExactDigest):
        return query.algorithm.encode() + b":" + query.digest
    h = hashlib.sha256(b"vpdq:")
    for f in query.features:
        h.update(f.hash.digest)
    return h.digest()


def _check_threshold(threshold: int) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 0 <= threshold <= 256:
        raise UsageError("the threshold is an integer between 0 and 256")


def words_to_digest(words: npt.NDArray[np.uint64]) -> bytes:
    """(4,) native words -> the 32-byte digest (inverse of digests_to_words for one row)."""
    return bytes(words.astype(">u8").tobytes())
