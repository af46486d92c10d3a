"""A partner's own defences against false positives: flood quarantine, allow list, review marks.

Why at the partner: submissions are anonymous, so a stored hash may be benign content (a meme,
a logo, a blank frame) that somebody submitted by mistake or to poison the list. The platform
decides locally, and the hub never learns a match (DESIGN.md flow 8): nothing here opens a
network connection. Format and rules: specs/partner-defences.md.

Three defences, kept in ``DIR/defences.sqlite3`` (0600; never the feed store):

* **flood quarantine**: a stored entry that matches more than ``FloodPolicy.limit`` distinct
  uploads within ``FloodPolicy.window`` seconds is put on hold (no longer returned). Uploads
  are counted without being stored: each query hash goes through HMAC-SHA256 with a local
  secret (``DIR/defences.key``, 0600) into a HyperLogLog sketch of fixed size per entry;
* **allow list** (a negative bank): the partner's own known-benign hashes or files; a stored
  entry within the match distance of an allow-listed hash is never returned;
* **review marks**: ``confirmed`` (real; never quarantined automatically), ``false_positive``
  (never returned again), and ``released`` (an operator lifted a quarantine; never
  quarantined again). Marks name entries by log index, never by hash value, and survive
  restarts and syncs; a withdrawal forgets them with the entry.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from hashing import (
    HashingError,
    Kind,
    PdqHash,
    VpdqFeature,
    digest_stream,
    hash_image,
    hash_video,
    match_features,
    sniff,
)
from hashing.vpdq import QUALITY_THRESHOLD
from partner_sdk.errors import StoreError, UsageError
from partner_sdk.index import digests_to_words

__all__ = [
    "DEFAULT_FLOOD_LIMIT",
    "DEFAULT_FLOOD_WINDOW",
    "DEFENCES_FILE",
    "AllowItem",
    "Defences",
    "EntryMark",
    "FloodPolicy",
    "MarkState",
    "parse_allow_hash",
]

DEFENCES_FILE: Final = "defences.sqlite3"
SECRET_FILE: Final = "defences.key"  # noqa: S105 (a file name, not a secret)
SCHEMA_VERSION: Final = 1

DEFAULT_FLOOD_LIMIT: Final = 500
"""Distinct uploads an entry may match within the window before it is quarantined."""
DEFAULT_FLOOD_WINDOW: Final = 86_400.0
"""One day: long enough to see a benign picture spread, short enough to forget old traffic."""
MAX_ALLOW_ITEMS: Final = 10_000
MAX_ALLOW_HASHES: Final = 100_000
"""Allow-listed hashes in all (a video counts its frames)."""
MAX_VIDEO_FRAMES: Final = 10_000
MAX_MARKS: Final = 100_000
MAX_TRACKED: Final = 20_000
"""Entries with a flood sketch (2 KiB each at most); the least recently matched go first."""
MAX_NOTE: Final = 200
MAX_LOG_INDEX: Final = 2**62

_P: Final = 9
"""HyperLogLog precision: 2^9 = 512 one-byte registers per entry and epoch (about 4 %
standard error around the default limit)."""
_M: Final = 1 << _P
_EPOCHS: Final = 4
"""The window is counted in four epochs of window/4: the count covers the last 3/4 to 4/4."""
_TAG_CONTEXT: Final = b"ncii-partner flood v1\x00"
_HEX: Final = re.compile(r"[0-9a-fA-F]+")
_SIZES: Final = {"pdq": 32, "md5": 16, "sha256": 32}

_log = logging.getLogger("partner_sdk.defences")

U64 = npt.NDArray[np.uint64]
Algorithm = Literal["pdq", "md5", "sha256", "vpdq"]
Reason = Literal["false_positive", "quarantine", "allow_list"]


class MarkState(enum.Enum):
    """What is known locally about one stored entry; the value is the JSON and CLI text."""

    CONFIRMED = "confirmed"
    FALSE_POSITIVE = "false_positive"
    QUARANTINED = "quarantined"
    RELEASED = "released"


@dataclass(frozen=True, slots=True)
class FloodPolicy:
    """Quarantine an entry after more than ``limit`` distinct uploads in ``window`` seconds;
    ``limit=0`` turns flood quarantine off (allow list and marks still apply)."""

    limit: int = DEFAULT_FLOOD_LIMIT
    window: float = DEFAULT_FLOOD_WINDOW

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int):
            raise UsageError("the flood limit is a whole number (0 turns quarantine off)")
        if not 0 <= self.limit <= 10_000_000:
            raise UsageError("the flood limit is 0..10000000 (0 turns quarantine off)")
        if not 60 <= self.window <= 90 * 86_400:
            raise UsageError("the flood window is 60 seconds to 90 days")


@dataclass(frozen=True, slots=True)
class EntryMark:
    """A stored entry's local state. ``distinct`` is the estimated distinct uploads when it
    was quarantined; ``note`` is the operator's own text (at most 200 characters)."""

    log_index: int
    state: MarkState
    since: int
    note: str | None = None
    distinct: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "log_index": self.log_index,
            "state": self.state.value,
            "since": self.since,
        }
        if self.note is not None:
            out["note"] = self.note
        if self.distinct is not None:
            out["distinct_uploads"] = self.distinct
        return out


@dataclass(frozen=True, slots=True)
class AllowItem:
    """One allow-list item (a file or a hash) as shown to the operator: never its values."""

    id: int
    source: Literal["file", "hash"]
    kind: str
    algorithms: tuple[str, ...]
    hashes: int
    added_at: int
    note: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "source": self.source,
            "kind": self.kind,
            "algorithms": list(self.algorithms),
            "hashes": self.hashes,
            "added_at": self.added_at,
        }
        if self.note is not None:
            out["note"] = self.note
        if self.error is not None:
            out["error"] = self.error
        return out


class StoredHashes(Protocol):
    """What the matcher tells the defences about a candidate (its stored values stay there)."""

    def pdq_words(self, key: int) -> U64: ...

    def video_features(self, key: int) -> list[VpdqFeature]: ...


class _MatchLike(Protocol):
    @property
    def log_index(self) -> int: ...

    @property
    def algorithm(self) -> str: ...


_Value = tuple[str, bytes, int]  # (algorithm, raw value, quality or frame number)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS marks (
    log_index INTEGER PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('confirmed','false_positive','quarantined','released')),
    since INTEGER NOT NULL,
    note TEXT,
    distinct_uploads INTEGER
);
CREATE TABLE IF NOT EXISTS flood_sketches (
    log_index INTEGER NOT NULL,
    epoch_seconds REAL NOT NULL,
    epoch INTEGER NOT NULL,
    registers BLOB NOT NULL,
    PRIMARY KEY (log_index, epoch_seconds, epoch)
);
CREATE TABLE IF NOT EXISTS allow_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    note TEXT,
    error TEXT
);
CREATE TABLE IF NOT EXISTS allow_hashes (
    item INTEGER NOT NULL REFERENCES allow_items (id) ON DELETE CASCADE,
    algorithm TEXT NOT NULL CHECK (algorithm IN ('pdq','md5','sha256','vpdq')),
    value BLOB NOT NULL,
    quality INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_allow_hashes_item ON allow_hashes (item);
"""


def _create_private(path: Path) -> None:
    """Create ``path`` 0600 before SQLite opens it (so -wal and -shm get 0600 too)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
    else:
        os.close(fd)


def _load_secret(path: Path) -> bytes:
    """The HMAC key of the flood counter: 32 random bytes, created once, owner-only.

    Written whole to a private temporary file, then hard-linked to its name (which fails if
    the name exists): a process starting at the same moment (``serve`` and a CLI command)
    never reads a half-written key, and every process ends up with the one that won."""
    if not path.exists():
        line = secrets.token_bytes(32).hex().encode() + b"\n"
        temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(temp, path, follow_symlinks=False)
            except FileExistsError:
                pass  # another process won: use its key
        finally:
            os.unlink(temp)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise UsageError(f"{path} is readable by other users (mode {mode:o}); chmod 600 {path}")
    text = path.read_bytes().strip()
    if len(text) != 64 or _HEX.fullmatch(text.decode("ascii", "replace")) is None:
        raise StoreError(f"{path} must hold 64 hex digits; delete it to start counting afresh")
    return bytes.fromhex(text.decode("ascii"))


def _check_index(log_index: int) -> int:
    if isinstance(log_index, bool) or not isinstance(log_index, int):
        raise UsageError("a match reference is the candidate's log index (a whole number)")
    if not 0 <= log_index < MAX_LOG_INDEX:
        raise UsageError("a log index is 0 or more")
    return log_index


def _check_note(note: str | None) -> str | None:
    if note is None:
        return None
    if not isinstance(note, str) or len(note) > MAX_NOTE or not note.isprintable():
        raise UsageError(f"a note is at most {MAX_NOTE} printable characters")
    return note


def parse_allow_hash(text: str) -> tuple[str, bytes]:
    """``pdq:HEX``, ``md5:HEX``, ``sha256:HEX``, or bare hex (64 digits: PDQ, 32: MD5).

    Why bare 64 digits mean PDQ: that is what PDQ tools print; a SHA-256 needs its prefix.
    """
    algorithm, colon, value = text.strip().partition(":")
    if not colon:
        algorithm, value = {64: "pdq", 32: "md5"}.get(len(algorithm), "?"), algorithm
    algorithm = algorithm.lower()
    size = _SIZES.get(algorithm)
    if size is None:
        raise UsageError(
            "a hash is pdq:HEX, md5:HEX or sha256:HEX (bare: 64 hex digits PDQ, 32 MD5), "
            "or the path of an existing file"
        )
    if len(value) != 2 * size or _HEX.fullmatch(value) is None:
        raise UsageError(f"a {algorithm} hash is {2 * size} hex digits")
    return algorithm, bytes.fromhex(value)


def _min_distance(rows: U64, words: U64) -> int:
    """The smallest Hamming distance between ``words`` (4,) and any of ``rows`` (n, 4)."""
    return int(np.bitwise_count(rows ^ words).sum(axis=1, dtype=np.intp).min())


def _tag_int(secret: bytes, identity: bytes) -> int:
    return int.from_bytes(hmac.new(secret, _TAG_CONTEXT + identity, hashlib.sha256).digest()[:8])


def _sketch_add(registers: npt.NDArray[np.uint8], tags: Iterable[int]) -> None:
    """HyperLogLog update: the first 9 bits choose a register, the rest give the rank."""
    for tag in tags:
        index = tag >> (64 - _P)
        rest = tag & ((1 << (64 - _P)) - 1)
        rank = (64 - _P) - rest.bit_length() + 1
        if rank > registers[index]:
            registers[index] = rank


def sketch_estimate(registers: npt.NDArray[np.uint8]) -> int:
    """Distinct items counted by one HyperLogLog (linear counting while registers are empty)."""
    zeros = int(np.count_nonzero(registers == 0))
    alpha = 0.7213 / (1 + 1.079 / _M)
    raw = alpha * _M * _M / float(np.sum(np.ldexp(1.0, -registers.astype(np.int64))))
    if raw <= 2.5 * _M and zeros:
        raw = _M * math.log(_M / zeros)
    return round(raw)


@dataclass
class _State:
    """The file's state as held in memory (reloaded when another connection commits)."""

    marks: dict[int, MarkState] = field(default_factory=dict)
    allow_pdq: U64 = field(default_factory=lambda: np.zeros((0, 4), dtype=np.uint64))
    allow_exact: set[tuple[str, bytes]] = field(default_factory=set)
    allow_videos: list[list[VpdqFeature]] = field(default_factory=list)
    verdicts: dict[tuple[str, int, int], bool] = field(default_factory=dict)


class Defences:
    """Open (or create) ``DIR/defences.sqlite3``; thread-safe; several processes may share it.

    :meth:`screen` is what the matcher calls after every lookup; the rest is the operator's
    API (also ``ncii-partner allow ...`` and ``ncii-partner review ...``). ``clock`` returns
    Unix seconds (tests pass their own).
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        flood: FloodPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self.flood = flood or FloodPolicy()
        self.clock = clock
        self.path = self.directory / DEFENCES_FILE
        self.suppressed: dict[str, int] = {"false_positive": 0, "quarantine": 0, "allow_list": 0}
        self.quarantines = 0
        self._lock = threading.RLock()
        self._epoch_seconds = self.flood.window / _EPOCHS
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
            _create_private(self.path)
            for suffix in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    os.chmod(side, 0o600)
            self._secret = _load_secret(self.directory / SECRET_FILE)
        except OSError as exc:
            raise StoreError(f"cannot create {self.path}: {exc.strerror}") from None
        try:
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=30, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA secure_delete=ON")
            self._conn.execute("PRAGMA foreign_keys=ON")
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            if version not in (0, SCHEMA_VERSION):
                raise StoreError(f"{self.path} has schema {version}; this SDK knows 1")
            self._conn.executescript(_SCHEMA)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from None
        self._state = _State()
        self._data_version = -1
        self._updates = 0
        self._reload()

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Defences:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sql(self, sql: str, args: Sequence[object] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot use {self.path}: {exc}") from None

    def _write(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` in one IMMEDIATE transaction (one writer across processes)."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                out = work()
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return out
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write {self.path}: {exc}") from None

    def _reload_if_changed(self) -> None:
        version = int(self._sql("PRAGMA data_version")[0][0])
        if version != self._data_version:
            self._reload()

    def _reload(self) -> None:
        """Read marks and the allow list (after another process or connection changed them)."""
        self._data_version = int(self._sql("PRAGMA data_version")[0][0])
        state = _State()
        for index, value in self._sql("SELECT log_index, state FROM marks"):
            state.marks[int(index)] = MarkState(value)
        pdq: list[bytes] = []
        videos: dict[int, list[VpdqFeature]] = {}
        for item, algorithm, value, quality in self._sql(
            "SELECT item, algorithm, value, quality FROM allow_hashes ORDER BY item, rowid"
        ):
            raw = bytes(value)
            if algorithm == "pdq":
                pdq.append(raw)
            elif algorithm == "vpdq":
                frames = videos.setdefault(int(item), [])
                q = int(quality)
                frames.append(VpdqFeature(len(frames), q, PdqHash(raw, q), 0.0))
            else:
                state.allow_exact.add((str(algorithm), raw))
        if pdq:
            state.allow_pdq = digests_to_words(b"".join(pdq))
        state.allow_videos = list(videos.values())
        self._state = state

    # -- matching ---------------------------------------------------------------------------

    def screen(
        self,
        queries: Sequence[object],
        identities: Sequence[bytes | None],
        results: Sequence[Sequence[_MatchLike]],
        threshold: int,
        stored: StoredHashes,
        *,
        video_percents: tuple[float, float] = (80.0, 0.0),
    ) -> list[list[int]]:
        """Which candidates to keep: for each query the positions of its kept matches.

        Drops false positives, quarantined entries and entries within ``threshold`` of an
        allow-listed hash; then counts the upload (the keyed hash of its ``identities``
        item: bytes that stand for that query, e.g. its PDQ) for every kept entry without a
        mark, and quarantines those over the limit. ``queries`` give MD5/SHA-256 digests.
        """
        with self._lock:
            self._reload_if_changed()
            state = self._state
            kept: list[list[int]] = []
            seen: dict[int, set[int]] = {}
            for query, identity, matches in zip(queries, identities, results, strict=True):
                mine: list[int] = []
                tag: int | None = None
                for pos, m in enumerate(matches):
                    reason = self._reason(m, query, threshold, stored, video_percents)
                    if reason is not None:
                        self.suppressed[reason] += 1
                        continue
                    mine.append(pos)
                    if self.flood.limit and identity and m.log_index not in state.marks:
                        if tag is None:
                            tag = _tag_int(self._secret, identity)
                        seen.setdefault(m.log_index, set()).add(tag)
                kept.append(mine)
            if not seen:
                return kept
            held = self._write(lambda: self._observe(seen))
            if not held:
                return kept
            out: list[list[int]] = []
            for mine, matches in zip(kept, results, strict=True):
                keep = [p for p in mine if matches[p].log_index not in held]
                self.suppressed["quarantine"] += len(mine) - len(keep)
                out.append(keep)
            return out

    def _reason(
        self,
        m: _MatchLike,
        query: object,
        threshold: int,
        stored: StoredHashes,
        video_percents: tuple[float, float],
    ) -> Reason | None:
        state = self._state
        mark = state.marks.get(m.log_index)
        if mark is MarkState.FALSE_POSITIVE:
            return "false_positive"
        if mark is MarkState.QUARANTINED:
            return "quarantine"
        if m.algorithm in ("md5", "sha256"):
            if not state.allow_exact:
                return None
            digest = getattr(query, m.algorithm, None)  # FileDigests
            if digest is None:
                digest = getattr(query, "digest", None)  # ExactDigest
            allowed = isinstance(digest, bytes) and (m.algorithm, digest) in state.allow_exact
            return "allow_list" if allowed else None
        if not (len(state.allow_pdq) or state.allow_videos):
            return None
        key = (m.algorithm, m.log_index, threshold)
        verdict = state.verdicts.get(key)
        if verdict is None:
            verdict = self._near_allowed(m, threshold, stored, video_percents)
            if len(state.verdicts) >= 100_000:
                state.verdicts.clear()
            state.verdicts[key] = verdict
        return "allow_list" if verdict else None

    def _near_allowed(
        self,
        m: _MatchLike,
        threshold: int,
        stored: StoredHashes,
        video_percents: tuple[float, float],
    ) -> bool:
        state = self._state
        if m.algorithm == "pdq":
            if not len(state.allow_pdq):
                return False
            words = stored.pdq_words(m.log_index)
            for row in words:
                if _min_distance(state.allow_pdq, row) <= threshold:
                    return True
            return False
        if m.algorithm == "vpdq" and state.allow_videos:
            candidate = stored.video_features(m.log_index)
            for video in state.allow_videos:
                verdict = match_features(video, candidate, distance_threshold=threshold)
                if verdict.is_match(*video_percents):
                    return True
        return False

    def _observe(self, seen: dict[int, set[int]]) -> set[int]:
        """Add the tags to each entry's sketch for the current epoch; quarantine those whose
        estimate over the last ``_EPOCHS`` epochs exceeds the limit. Inside a transaction."""
        now = self.clock()
        epoch = int(now // self._epoch_seconds)
        oldest = epoch - _EPOCHS + 1
        held: set[int] = set()
        marks = {
            int(r[0])
            for r in self._conn.execute(
                "SELECT log_index FROM marks WHERE log_index IN (SELECT value FROM json_each(?))",
                (json.dumps(list(seen)),),
            )
        }
        for log_index, tags in seen.items():
            if log_index in marks:
                continue  # marked by another process since this one last read
            rows = self._conn.execute(
                "SELECT epoch, registers FROM flood_sketches WHERE log_index = ? "
                "AND epoch_seconds = ?",
                (log_index, self._epoch_seconds),
            ).fetchall()
            current = np.zeros(_M, dtype=np.uint8)
            union = np.zeros(_M, dtype=np.uint8)
            for e, blob in rows:
                registers = np.frombuffer(bytes(blob), dtype=np.uint8)
                if e == epoch:
                    current = registers.copy()
                elif e >= oldest:
                    np.maximum(union, registers, out=union)
            _sketch_add(current, tags)
            np.maximum(union, current, out=union)
            distinct = sketch_estimate(union)
            if distinct > self.flood.limit:
                self._conn.execute("DELETE FROM flood_sketches WHERE log_index = ?", (log_index,))
                self._conn.execute(
                    "INSERT OR REPLACE INTO marks (log_index, state, since, distinct_uploads) "
                    "VALUES (?, 'quarantined', ?, ?)",
                    (log_index, int(now), distinct),
                )
                held.add(log_index)
                continue
            # Epochs out of the window, and sketches counted with another window length.
            self._conn.execute(
                "DELETE FROM flood_sketches WHERE log_index = ? AND (epoch < ? OR "
                "epoch_seconds != ?)",
                (log_index, oldest, self._epoch_seconds),
            )
            self._conn.execute(
                "INSERT OR REPLACE INTO flood_sketches (log_index, epoch_seconds, epoch, "
                "registers) VALUES (?, ?, ?, ?)",
                (log_index, self._epoch_seconds, epoch, current.tobytes()),
            )
        self._updates += len(seen)
        if self._updates >= 1000:
            self._updates = 0
            self._bound_sketches(oldest)
        for log_index in held:
            self._state.marks[log_index] = MarkState.QUARANTINED
            self.quarantines += 1
            _log.warning(
                "quarantined the entry at log index %d: it matched more than %d distinct "
                "uploads within %g s, so it is most likely benign; it is no longer returned "
                "(review it, then 'ncii-partner review release %d' to match it again)",
                log_index,
                self.flood.limit,
                self.flood.window,
                log_index,
                extra={"log_index": log_index, "flood_limit": self.flood.limit},
            )
        return held

    def _bound_sketches(self, oldest: int) -> None:
        """Forget epochs out of the window, then the least recently matched entries."""
        self._conn.execute(
            "DELETE FROM flood_sketches WHERE epoch_seconds = ? AND epoch < ?",
            (self._epoch_seconds, oldest),
        )
        tracked = self._conn.execute(
            "SELECT count(DISTINCT log_index) FROM flood_sketches"
        ).fetchone()[0]
        if tracked > MAX_TRACKED:  # (a sketch of another window length counts as old)
            self._conn.execute(
                "DELETE FROM flood_sketches WHERE log_index IN (SELECT log_index FROM "
                "flood_sketches GROUP BY log_index ORDER BY max(epoch) LIMIT ?)",
                (tracked - MAX_TRACKED,),
            )

    def forget(self, log_indexes: Iterable[int]) -> int:
        """Drop marks and sketches of withdrawn entries (a withdrawal erases them too)."""
        keys = sorted(set(log_indexes))
        if not keys:
            return 0
        with self._lock:

            def work() -> int:
                rows = [(k,) for k in keys]
                n = self._conn.executemany("DELETE FROM marks WHERE log_index = ?", rows).rowcount
                self._conn.executemany("DELETE FROM flood_sketches WHERE log_index = ?", rows)
                return int(n)

            n = int(self._write(work))
            for key in keys:
                self._state.marks.pop(key, None)
            return n

    def tracked(self) -> set[int]:
        """Log indexes this file says anything about (marks and sketches)."""
        with self._lock:
            rows = self._sql(
                "SELECT log_index FROM marks UNION SELECT log_index FROM flood_sketches"
            )
            return {int(r[0]) for r in rows}

    # -- review marks -----------------------------------------------------------------------

    def _set_mark(
        self,
        log_index: int,
        state: MarkState,
        note: str | None,
        require: MarkState | None = None,
    ) -> EntryMark:
        _check_index(log_index)
        note = _check_note(note)
        now = int(self.clock())
        with self._lock:

            def work() -> EntryMark:
                row = self._conn.execute(
                    "SELECT state, note FROM marks WHERE log_index = ?", (log_index,)
                ).fetchone()
                if require is not None and (row is None or row[0] != require.value):
                    raise UsageError(f"the entry at log index {log_index} is not quarantined")
                if row is None:
                    total = self._conn.execute("SELECT count(*) FROM marks").fetchone()[0]
                    if total >= MAX_MARKS:
                        raise UsageError(
                            f"there are {MAX_MARKS} review records already; clear some "
                            "('ncii-partner review clear REF')"
                        )
                kept_note = note if note is not None else (None if row is None else row[1])
                self._conn.execute(
                    "INSERT OR REPLACE INTO marks (log_index, state, since, note) "
                    "VALUES (?, ?, ?, ?)",
                    (log_index, state.value, now, kept_note),
                )
                self._conn.execute("DELETE FROM flood_sketches WHERE log_index = ?", (log_index,))
                return EntryMark(log_index, state, now, kept_note)

            mark: EntryMark = self._write(work)
            self._state.marks[log_index] = state
            return mark

    def confirm(self, log_index: int, note: str | None = None) -> EntryMark:
        """A reviewer saw the candidate and it is what the entry says: keep matching it, and
        never quarantine it automatically (an abuser cannot flood it off the list)."""
        return self._set_mark(log_index, MarkState.CONFIRMED, note)

    def false_positive(self, log_index: int, note: str | None = None) -> EntryMark:
        """A reviewer saw the candidate and it is benign: this entry never matches here again
        (until :meth:`clear`). To suppress benign content itself, allow-list its file."""
        return self._set_mark(log_index, MarkState.FALSE_POSITIVE, note)

    def release(self, log_index: int, note: str | None = None) -> EntryMark:
        """Lift a quarantine: the entry matches again and is never quarantined again."""
        return self._set_mark(log_index, MarkState.RELEASED, note, require=MarkState.QUARANTINED)

    def clear(self, log_index: int) -> None:
        """Remove the entry's mark (a quarantine too: counting then starts afresh)."""
        _check_index(log_index)
        with self._lock:

            def work() -> int:
                return int(
                    self._conn.execute(
                        "DELETE FROM marks WHERE log_index = ?", (log_index,)
                    ).rowcount
                )

            if not self._write(work):
                raise UsageError(f"there is no review record for log index {log_index}")
            self._state.marks.pop(log_index, None)

    def marks(self, state: MarkState | None = None) -> list[EntryMark]:
        """Review records and quarantines, by log index."""
        with self._lock:
            rows = self._sql(
                "SELECT log_index, state, since, note, distinct_uploads FROM marks "
                "ORDER BY log_index"
            )
        out = [EntryMark(int(r[0]), MarkState(r[1]), int(r[2]), r[3], r[4]) for r in rows]
        return [m for m in out if state is None or m.state is state]

    # -- allow list -------------------------------------------------------------------------

    def allow_hash(self, text: str, note: str | None = None) -> AllowItem:
        """Allow-list one hash given as text (:func:`parse_allow_hash`)."""
        algorithm, value = parse_allow_hash(text)
        return self._add_item("hash", "hash", [(algorithm, value, 0)], note, None)

    def allow_file(self, path: Path | str, note: str | None = None) -> AllowItem:
        """Allow-list a file: its MD5 and SHA-256, and its PDQ (image) or vPDQ (video) made
        with hashing/. A picture that cannot be decoded keeps its MD5/SHA-256 (``error``)."""
        values: list[_Value] = []
        error: str | None = None
        try:
            with open(path, "rb") as stream:
                digests = digest_stream(stream, max_bytes=4 << 30)
                values += [("md5", digests.md5, 0), ("sha256", digests.sha256, 0)]
                stream.seek(0)
                kind = sniff(stream).kind
                stream.seek(0)
                try:
                    if kind is Kind.IMAGE:
                        image = hash_image(stream)
                        values.append(("pdq", image.digest, image.quality))
                    elif kind is Kind.VIDEO:
                        seen: set[bytes] = set()
                        for f in hash_video(stream):
                            if f.hash.digest in seen or f.quality < QUALITY_THRESHOLD:
                                continue
                            seen.add(f.hash.digest)
                            values.append(("vpdq", f.hash.digest, f.quality))
                        if len(values) - 2 > MAX_VIDEO_FRAMES:
                            raise UsageError(
                                f"{path} has more than {MAX_VIDEO_FRAMES} distinct frames; "
                                "allow-list a shorter clip"
                            )
                except HashingError as exc:
                    error = str(exc) or "the picture could not be decoded"
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from None
        except HashingError as exc:
            raise UsageError(f"cannot read {path}: {exc}") from None
        return self._add_item("file", kind.value, values, note, error)

    def _add_item(
        self,
        source: Literal["file", "hash"],
        kind: str,
        values: list[_Value],
        note: str | None,
        error: str | None,
    ) -> AllowItem:
        note = _check_note(note)
        now = int(self.clock())
        with self._lock:

            def work() -> int:
                items, hashes = self._conn.execute(
                    "SELECT (SELECT count(*) FROM allow_items), (SELECT count(*) FROM allow_hashes)"
                ).fetchone()
                if items >= MAX_ALLOW_ITEMS or hashes + len(values) > MAX_ALLOW_HASHES:
                    raise UsageError(
                        f"the allow list holds at most {MAX_ALLOW_ITEMS} items and "
                        f"{MAX_ALLOW_HASHES} hashes; remove some ('ncii-partner allow remove')"
                    )
                cur = self._conn.execute(
                    "INSERT INTO allow_items (source, kind, added_at, note, error) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (source, kind, now, note, error),
                )
                item = int(cur.lastrowid or 0)
                self._conn.executemany(
                    "INSERT INTO allow_hashes (item, algorithm, value, quality) "
                    "VALUES (?, ?, ?, ?)",
                    [(item, a, v, q) for a, v, q in values],
                )
                return item

            item = int(self._write(work))
            self._reload()
        algorithms = tuple(dict.fromkeys(a for a, _, _ in values))
        return AllowItem(item, source, kind, algorithms, len(values), now, note, error)

    def allow_items(self) -> list[AllowItem]:
        """The allow list as the operator sees it (ids, kinds, counts; never values)."""
        with self._lock:
            rows = self._sql(
                "SELECT i.id, i.source, i.kind, i.added_at, i.note, i.error, "
                "group_concat(DISTINCT h.algorithm), count(h.item) FROM allow_items i "
                "LEFT JOIN allow_hashes h ON h.item = i.id GROUP BY i.id ORDER BY i.id"
            )
        order = ("md5", "sha256", "pdq", "vpdq")
        out = []
        for r in rows:
            algs = set((r[6] or "").split(",")) - {""}
            out.append(
                AllowItem(
                    int(r[0]),
                    r[1],
                    r[2],
                    tuple(a for a in order if a in algs),
                    int(r[7]),
                    int(r[3]),
                    r[4],
                    r[5],
                )
            )
        return out

    def allow_remove(self, item: int) -> None:
        """Remove one allow-list item; its values are overwritten in the file (secure_delete)."""
        if isinstance(item, bool) or not isinstance(item, int):
            raise UsageError("an allow-list id is a whole number (see 'ncii-partner allow list')")
        with self._lock:

            def work() -> int:
                self._conn.execute("DELETE FROM allow_hashes WHERE item = ?", (item,))
                return int(
                    self._conn.execute("DELETE FROM allow_items WHERE id = ?", (item,)).rowcount
                )

            if not self._write(work):
                raise UsageError(f"there is no allow-list item {item} ('ncii-partner allow list')")
            # secure_delete overwrote the values in the pages; fold the WAL (which still has
            # the older pages) back into the file and truncate it, as far as readers allow.
            self._sql("PRAGMA wal_checkpoint(TRUNCATE)")
            self._reload()

    # -- reporting --------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Counts and quarantined entries for ``status`` and ``/stats``; never a hash value."""
        with self._lock:
            counts = dict(self._sql("SELECT state, count(*) FROM marks GROUP BY state"))
            items, hashes = self._sql(
                "SELECT (SELECT count(*) FROM allow_items), (SELECT count(*) FROM allow_hashes)"
            )[0]
            tracked = self._sql("SELECT count(DISTINCT log_index) FROM flood_sketches")[0][0]
        return {
            "flood_limit": self.flood.limit,
            "flood_window_seconds": self.flood.window,
            "quarantined": [m.to_json() for m in self.marks(MarkState.QUARANTINED)],
            "marks": {s.value: int(counts.get(s.value, 0)) for s in MarkState},
            "allow_items": int(items),
            "allow_hashes": int(hashes),
            "tracked_entries": int(tracked),
            "suppressed": dict(self.suppressed),
        }


def read_summary(directory: Path) -> dict[str, Any] | None:
    """The summary of ``DIR/defences.sqlite3`` when it exists (for ``status``), else None."""
    if not (directory / DEFENCES_FILE).exists():
        return None
    with Defences(directory) as defences:
        out = defences.summary()
    for key in ("flood_limit", "flood_window_seconds", "suppressed"):
        out.pop(key)
    return out
