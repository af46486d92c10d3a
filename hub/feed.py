"""The feed sealer: log ranges -> encrypted batches, wrapped per partner (specs/feed.md).

Why this shape: each batch is encrypted once (cost grows with entries) and only its 32-byte key
is wrapped per partner (partners x batches), so adding a partner never touches entries. The
sealer runs in the sequencer's process after checkpoints are published, so it is the single
writer of batches; every database change is one transaction guarded by a compare-and-swap,
and ciphertext files are content-addressed (DATA/feed/<sha256>), hence immutable.

Erasure: batch keys live only in the key store (hub.vault), one per batch version. The
withdrawal request itself erases the key of every sealed batch still revealing a withdrawn
addition; once the tombstone is published the batch is re-sealed without that body and salt (a
redaction record instead) under a fresh key, and the old file is overwritten and unlinked.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from crypto.commitment import SALT_SIZE, LeafData, LeafKind
from crypto.errors import InconsistentTreeError
from crypto.feed import BatchBinding, seal_batch_fresh, wrap_key
from hub.atomicfile import write_atomically
from hub.atrest import open_entry, open_tombstone
from hub.db.engine import is_postgres, read_connection
from hub.db.models import (
    EntryRow,
    FeedBatchRow,
    FeedRedactionRow,
    FeedStateRow,
    FeedWrapRow,
    LogStateRow,
    PartnerRow,
    table_of,
)
from hub.keystore import HubKeys

__all__ = [
    "DEFAULT_BATCH_MAX_BYTES",
    "PLAINTEXT_MAGIC",
    "BatchInfo",
    "FeedFiles",
    "FeedSealer",
    "Redacted",
    "Revealed",
    "encode_plaintext",
    "max_entry_body_bytes",
]

log = logging.getLogger("ncii.hub.feed")

ENTRIES = table_of(EntryRow)
BATCHES = table_of(FeedBatchRow)
WRAPS = table_of(FeedWrapRow)
REDACTIONS = table_of(FeedRedactionRow)
FEED_STATE = table_of(FeedStateRow)
PARTNERS = table_of(PartnerRow)
LOG = table_of(LogStateRow)

PLAINTEXT_MAGIC = b"NCFP"
PLAINTEXT_VERSION = 1
TAG_ENTRY = 1
TAG_REDACTED = 2

# Plaintext framing (section 3 of specs/feed.md): header, and per record beyond salt + body.
PLAINTEXT_HEADER_SIZE = 4 + 1 + 8 + 8 + 4
ENTRY_RECORD_OVERHEAD = 1 + 1 + 4  # tag, kind, body_len (the salt is counted with the body)
REDACTED_RECORD_SIZE = 1 + 34 + 8
# Byte cap on a batch's plaintext (specs/feed.md section 2): a quarter of the partner SDK's
# limit on sealed batches (crypto.feed.DEFAULT_MAX_BATCH, 256 MiB), so partners never refuse one.
DEFAULT_BATCH_MAX_BYTES = 64 << 20
# Longest canonical vPDQ frame, plus its separating comma: {"frame":2147483647,"hash":<64 hex>,
# "quality":100,"timestamp":<float repr, at most 23 characters>}.
_MAX_FRAME_BYTES = 9 + 10 + 9 + 64 + 12 + 3 + 13 + 23 + 1 + 1
_VPDQ_WRAPPER_BYTES = len(b'{"hash":{"algorithm":"vpdq","frames":[]},"kind":"addition","v":1}')


def max_entry_body_bytes(max_vpdq_frames: int) -> int:
    """Upper bound on any entry body the hub accepts: a vPDQ entry of the most, longest frames.

    Every other body (PDQ, MD5, SHA-256, tombstone) is under 200 bytes, far below this.
    """
    return _VPDQ_WRAPPER_BYTES + max(1, max_vpdq_frames) * _MAX_FRAME_BYTES


# -- batch plaintext (specs/feed.md section 3) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Revealed:
    """An entry delivered in clear to partners: its kind, salt and exact entry body."""

    kind: int
    salt: bytes
    body: bytes


@dataclass(frozen=True, slots=True)
class Redacted:
    """A withdrawn addition: only its (public) leaf data and the tombstone's log index."""

    leaf_data: bytes
    tombstone_index: int


def encode_plaintext(start: int, end: int, records: Sequence[Revealed | Redacted]) -> bytes:
    """magic || version || u64 start || u64 end || u32 count || one record per index."""
    if len(records) != end - start:
        raise ValueError("a batch has exactly one record per index of its range")
    parts = [
        PLAINTEXT_MAGIC,
        bytes((PLAINTEXT_VERSION,)),
        struct.pack(">QQI", start, end, end - start),
    ]
    for r in records:
        if isinstance(r, Revealed):
            parts.append(struct.pack(">BB", TAG_ENTRY, r.kind))
            parts.append(r.salt)
            parts.append(struct.pack(">I", len(r.body)))
            parts.append(r.body)
        else:
            parts.append(bytes((TAG_REDACTED,)))
            parts.append(r.leaf_data)
            parts.append(struct.pack(">Q", r.tombstone_index))
    return b"".join(parts)


# -- ciphertext files -----------------------------------------------------------------------


class FeedFiles:
    """Sealed batches as immutable files DATA/feed/<sha256 hex> (servable by any web server)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def valid_name(name: str) -> bool:
        return len(name) == 64 and all(c in "0123456789abcdef" for c in name)

    def path(self, name: str) -> Path:
        if not self.valid_name(name):
            raise ValueError("feed file names are 64 lowercase hex digits")
        return self.root / name

    def write(self, data: bytes) -> str:
        """Store ``data`` atomically under its SHA-256; returns the name."""
        name = hashlib.sha256(data).hexdigest()
        target = self.path(name)
        self.root.mkdir(mode=0o755, parents=True, exist_ok=True)
        write_atomically(target, data)
        return name

    def read(self, name: str) -> bytes | None:
        try:
            return self.path(name).read_bytes()
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None

    def delete(self, name: str) -> None:
        """Overwrite the file with zeros in place (synced), unlink it and sync the directory.

        Why overwrite: the batch key is erased already, so the bytes are unreadable anyway;
        zeroing also leaves no ciphertext for a later key-store restore to pair with. (A file
        system that copies on write, or an SSD's remapping, may still keep the old blocks: the
        promise rests on the key erasure, specs/hub-storage.md section 4.)
        """
        path = self.path(name)
        try:
            fd = os.open(path, os.O_WRONLY)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            remaining = os.fstat(fd).st_size
            chunk = bytes(min(remaining, 1 << 20))
            while remaining > 0:
                remaining -= os.write(fd, chunk[: min(remaining, len(chunk))])
            os.fsync(fd)
        finally:
            os.close(fd)
        path.unlink(missing_ok=True)
        dfd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def names(self) -> Iterator[str]:
        if self.root.is_dir():
            for p in self.root.iterdir():
                if self.valid_name(p.name):
                    yield p.name


# -- the sealer -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchInfo:
    start: int
    end: int
    version: int
    file: str
    size: int


def _param(sql: str, postgres: bool) -> str:
    """A driver-level statement written with ``?`` (sqlite3); ``%s`` for psycopg."""
    return sql.replace("?", "%s") if postgres else sql


class _Postpone(Exception):
    """A withdrawn addition's tombstone is not published yet: seal this range next round."""


class FeedSealer:
    """Seals ranges, re-seals after withdrawals, wraps for new or rotated partners."""

    def __init__(
        self,
        engine: Engine,
        files: FeedFiles,
        keys: HubKeys,
        *,
        batch_entries: int = 4096,
        batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES,
        max_age: float = 0.0,
        compact_age: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.files = files
        self.keys = keys
        self.batch_entries = batch_entries
        self.batch_max_bytes = batch_max_bytes
        self.max_age = max_age
        self.compact_age = compact_age
        self.clock = clock
        self._pg = is_postgres(engine)
        # One round at a time in this process: the sequencer's rounds and a feed request
        # wrapping for a partner just added (wrap_new_partners) never interleave.
        self._round = threading.Lock()
        self._compact_floor = 0  # aligned ranges below this need no merge

    # -- reading

    def _published(self, conn: Connection) -> int:
        return int(conn.execute(select(LOG.c.published_size).where(LOG.c.id == 1)).scalar_one())

    def _records(
        self, conn: Connection, start: int, end: int, published: int
    ) -> tuple[list[Revealed | Redacted], list[tuple[int, int]], list[str]]:
        """Plaintext records of [start, end), the (index, tombstone index) redactions, and
        the entry ids of the additions revealed."""
        # Driver-level: a round's thousand rows through SQLAlchemy's row processing cost
        # more than reading them.
        rows = conn.exec_driver_sql(
            _param(
                "SELECT log_index, kind, case_id, entry_id, ciphertext, leaf_data, withdrawn_by "
                "FROM entries WHERE log_index >= ? AND log_index < ? ORDER BY log_index",
                self._pg,
            ),
            (start, end),
        ).all()
        if len(rows) != end - start or any(int(r[0]) != start + i for i, r in enumerate(rows)):
            raise InconsistentTreeError("log entries for a feed range are missing")
        tombs = [r[6] for r in rows if r[6] is not None]
        tomb_index: dict[str, int | None] = {}
        for i in range(0, len(tombs), 500):
            for entry_id, idx in conn.execute(
                select(ENTRIES.c.entry_id, ENTRIES.c.log_index).where(
                    ENTRIES.c.entry_id.in_(tombs[i : i + 500])
                )
            ).all():
                tomb_index[str(entry_id)] = None if idx is None else int(idx)
        revealed = [str(r[3]) for r in rows if r[6] is None and int(r[1]) == LeafKind.ADDITION]
        entry_keys = self.keys.vault.entry_keys(revealed)
        records: list[Revealed | Redacted] = []
        redactions: list[tuple[int, int]] = []
        master = self.keys.master_key
        for index, kind, case_id, entry_id, ciphertext, leaf_data, withdrawn_by in rows:
            leaf = bytes(leaf_data)
            if withdrawn_by is not None:
                t = tomb_index.get(str(withdrawn_by))
                if t is None or t >= published:
                    raise _Postpone
                records.append(Redacted(leaf, t))
                redactions.append((int(index), t))
                continue
            if ciphertext is None:
                raise InconsistentTreeError("a live entry has no stored body")
            if int(kind) == LeafKind.TOMBSTONE:
                salt, body = open_tombstone(master, case_id, entry_id, bytes(ciphertext))
            else:
                key = entry_keys.get(str(entry_id))
                if key is None:
                    raise InconsistentTreeError("a live addition's key is not in the key store")
                salt, body = open_entry(key, case_id, entry_id, bytes(ciphertext))
            if len(salt) != SALT_SIZE:
                raise InconsistentTreeError("a stored salt has the wrong length")
            # Cheap self-check: never hand partners an entry that does not open its leaf.
            LeafData.decode(leaf).verify(body, salt)
            records.append(Revealed(int(kind), salt, body))
        return records, redactions, revealed

    def _active_partners(self, conn: Connection) -> list[tuple[str, bytes]]:
        rows = conn.execute(
            select(PARTNERS.c.name, PARTNERS.c.feed_key).where(PARTNERS.c.revoked.is_(False))
        ).all()
        return [(str(r[0]), bytes(r[1])) for r in rows]

    # -- sealing

    def _seal(self, start: int, end: int, old: BatchInfo | None) -> BatchInfo | None:
        """Seal (or re-seal) [start, end); None when it must wait for a tombstone."""
        binding = BatchBinding(self.keys.origin, start, end)
        with read_connection(self.engine) as conn:
            published = self._published(conn)
            try:
                records, redactions, revealed = self._records(conn, start, end, published)
            except _Postpone:
                return None
        key, sealed = seal_batch_fresh(encode_plaintext(start, end, records), binding)
        data = sealed.encode()
        name = self.files.write(data)
        version = 1 if old is None else old.version + 1
        vault = self.keys.vault
        vault.put_batch_key(start, version, key)  # durable before any row names this version
        try:
            self._store(start, end, version, name, len(data), key, binding, old, redactions)
        except BaseException:
            vault.erase(batches=[(start, version)])
            raise
        if old is not None:
            vault.erase(batches=[(start, old.version)])
            if old.file != name:
                self.files.delete(old.file)
        if revealed and self._any_withdrawn(start, end, len(redactions)):
            # A withdrawal committed while this batch was being sealed, after its request
            # looked for batches to erase: erase this key too; the re-seal follows.
            vault.erase(batches=[(start, version)])
        return BatchInfo(start, end, version, name, len(data))

    def _any_withdrawn(self, start: int, end: int, redacted: int) -> bool:
        """Whether more additions of [start, end) are withdrawn now than the ``redacted``
        ones the batch was sealed with: one of those it revealed was withdrawn meanwhile.

        Why count instead of asking for the revealed ids: a withdrawal only ever sets
        ``withdrawn_by`` (never clears it), and when the batch was read every withdrawn
        addition of the range became a redaction (or the seal was postponed); one range
        scan on the log index replaces a query of 500-id lists per thousand entries."""
        with read_connection(self.engine) as conn:
            count = conn.exec_driver_sql(
                _param(
                    "SELECT count(*) FROM entries WHERE log_index >= ? AND log_index < ? "
                    "AND withdrawn_by IS NOT NULL",
                    self._pg,
                ),
                (start, end),
            ).scalar_one()
        return int(count) > redacted

    def _store(
        self,
        start: int,
        end: int,
        version: int,
        name: str,
        size: int,
        key: bytes,
        binding: BatchBinding,
        old: BatchInfo | None,
        redactions: list[tuple[int, int]],
    ) -> None:
        """The batch row, its partner wraps and its redaction records, in one transaction."""
        now = int(self.clock())
        with self.engine.begin() as conn:
            if old is None:
                current = conn.execute(select(func.max(BATCHES.c.end))).scalar()
                if (0 if current is None else int(current)) != start:
                    raise InconsistentTreeError("another sealer moved the feed")
                conn.execute(
                    insert(BATCHES).values(
                        start=start,
                        end=end,
                        version=version,
                        file=name,
                        size=size,
                        sealed_at=now,
                    )
                )
            else:
                result = conn.execute(
                    update(BATCHES)
                    .where(BATCHES.c.start == start, BATCHES.c.version == old.version)
                    .values(
                        version=version,
                        file=name,
                        size=size,
                        sealed_at=now,
                    )
                )
                if result.rowcount != 1:
                    raise InconsistentTreeError("another sealer re-sealed this batch")
                conn.execute(delete(WRAPS).where(WRAPS.c.start == start))
            self._record_wraps_and_redactions(conn, key, binding, version, redactions)

    def seal_ready(self) -> int:
        """Seal every range that is due; returns the number of batches sealed."""
        count = 0
        n = self.batch_entries
        while True:
            with read_connection(self.engine) as conn:
                published = self._published(conn)
                current = conn.execute(select(func.max(BATCHES.c.end))).scalar()
                start = 0 if current is None else int(current)
                if start >= published:
                    return count
                aligned = (start // n + 1) * n
                if aligned <= published:
                    end = aligned
                else:
                    oldest = conn.execute(
                        select(ENTRIES.c.created_at).where(ENTRIES.c.log_index == start)
                    ).scalar()
                    if oldest is None or self.clock() - int(oldest) < self.max_age:
                        return count
                    end = published
                end = self._byte_end(conn, start, end)
            if self._seal(start, end, None) is None:
                return count
            count += 1

    def _byte_end(self, conn: Connection, start: int, end: int) -> int:
        """Shorten [start, end) so its plaintext stays within ``batch_max_bytes``.

        Record sizes are estimated from the stored ciphertext (salt + body + 40 bytes of nonce
        and tag), so the estimate is never below the real size. At least one entry is kept:
        an entry larger than the cap is sealed alone.
        """
        total = PLAINTEXT_HEADER_SIZE
        rows = conn.execute(
            select(ENTRIES.c.log_index, func.length(ENTRIES.c.ciphertext))
            .where(ENTRIES.c.log_index >= start, ENTRIES.c.log_index < end)
            .order_by(ENTRIES.c.log_index)
        )
        for index, length in rows:
            total += REDACTED_RECORD_SIZE if length is None else ENTRY_RECORD_OVERHEAD + int(length)
            if total > self.batch_max_bytes and int(index) > start:
                return int(index)
        return end

    def _batch_of(self, conn: Connection, index: int) -> BatchInfo | None:
        row = conn.execute(
            select(
                BATCHES.c.start, BATCHES.c.end, BATCHES.c.version, BATCHES.c.file, BATCHES.c.size
            ).where(BATCHES.c.start <= index, BATCHES.c.end > index)
        ).first()
        return (
            None
            if row is None
            else BatchInfo(int(row[0]), int(row[1]), int(row[2]), str(row[3]), int(row[4]))
        )

    def redact_withdrawn(self) -> int:
        """Re-seal sealed batches holding additions withdrawn by newly published tombstones."""
        with read_connection(self.engine) as conn:
            published = self._published(conn)
            scanned_row = conn.execute(
                select(FEED_STATE.c.scanned).where(FEED_STATE.c.id == 1)
            ).first()
            scanned = 0 if scanned_row is None else int(scanned_row[0])
            if scanned >= published:
                return 0
            tomb = ENTRIES.alias("t")
            target = ENTRIES.alias("a")
            rows = conn.execute(
                select(target.c.log_index)
                .select_from(tomb.join(target, target.c.entry_id == tomb.c.withdraws))
                .where(
                    tomb.c.kind == int(LeafKind.TOMBSTONE),
                    tomb.c.log_index >= scanned,
                    tomb.c.log_index < published,
                )
            ).all()
            targets = sorted({int(r[0]) for r in rows if r[0] is not None})
            done = {
                int(r[0])
                for i in range(0, len(targets), 500)
                for r in conn.execute(
                    select(REDACTIONS.c.log_index).where(
                        REDACTIONS.c.log_index.in_(targets[i : i + 500])
                    )
                ).all()
            }
            affected: dict[int, BatchInfo] = {}
            for index in targets:
                if index in done:
                    continue
                batch = self._batch_of(conn, index)
                if batch is not None:
                    affected[batch.start] = batch
        resealed = 0
        for batch in affected.values():
            if self._seal(batch.start, batch.end, batch) is None:
                return resealed  # a tombstone not yet published: retry next round
            resealed += 1
        with self.engine.begin() as conn:
            if scanned_row is None:
                conn.execute(insert(FEED_STATE).values(id=1, scanned=published))
            else:
                conn.execute(
                    update(FEED_STATE).where(FEED_STATE.c.id == 1).values(scanned=published)
                )
        return resealed

    def rewrap_partners(self) -> int:
        """Wrap every batch for partners just added or rotated; returns wraps written."""
        with read_connection(self.engine) as conn:
            todo = conn.execute(
                select(PARTNERS.c.name, PARTNERS.c.feed_key, PARTNERS.c.key_version).where(
                    PARTNERS.c.rewrap.is_(True), PARTNERS.c.revoked.is_(False)
                )
            ).all()
        written = 0
        for name, feed_key, key_version in todo:
            with read_connection(self.engine) as conn:
                batches = conn.execute(
                    select(BATCHES.c.start, BATCHES.c.end, BATCHES.c.version).order_by(
                        BATCHES.c.start
                    )
                ).all()
            wraps = []
            for start, end, version in batches:
                binding = BatchBinding(self.keys.origin, int(start), int(end))
                key = self.keys.vault.batch_key(int(start), int(version))
                if key is None:
                    # Erased by a withdrawal; the pending re-seal wraps the new key for every
                    # active partner, this one included.
                    continue
                wraps.append(
                    {
                        "partner": name,
                        "start": int(start),
                        "version": int(version),
                        "wrap": wrap_key(key, bytes(feed_key), binding),
                    }
                )
            with self.engine.begin() as conn:
                claimed = conn.execute(
                    update(PARTNERS)
                    .where(
                        PARTNERS.c.name == name,
                        PARTNERS.c.key_version == key_version,
                        PARTNERS.c.rewrap.is_(True),
                        PARTNERS.c.revoked.is_(False),
                    )
                    .values(rewrap=False)
                )
                if claimed.rowcount != 1:
                    continue  # rotated or revoked meanwhile: the next round redoes it
                conn.execute(delete(WRAPS).where(WRAPS.c.partner == name))
                if wraps:
                    conn.execute(insert(WRAPS), wraps)
                written += len(wraps)
        return written

    def collect_garbage(self) -> int:
        """Erase files and keys of no current batch (left by a crash mid-seal or by restoring
        an old key-store backup); runs when this process becomes the sequencer."""
        with read_connection(self.engine) as conn:
            rows = conn.execute(select(BATCHES.c.start, BATCHES.c.version, BATCHES.c.file)).all()
        live = {str(r[2]) for r in rows}
        current = {int(r[0]): int(r[1]) for r in rows}
        stale = [
            (start, version)
            for start, version in self.keys.vault.batch_key_ids()
            if version != current.get(start)
        ]
        self.keys.vault.erase(batches=stale)
        removed = 0
        for name in list(self.files.names()):
            if name not in live:
                self.files.delete(name)
                removed += 1
        return removed

    def _record_wraps_and_redactions(
        self,
        conn: Connection,
        key: bytes,
        binding: BatchBinding,
        version: int,
        redactions: Sequence[tuple[int, int]],
    ) -> None:
        """In the transaction that stores a batch version: its key wrapped for every active
        partner, and the redactions it carries that are not recorded yet."""
        start, end = binding.start, binding.end
        wraps = [
            {"partner": p, "start": start, "version": version, "wrap": wrap_key(key, fk, binding)}
            for p, fk in self._active_partners(conn)
        ]
        if wraps:
            conn.execute(insert(WRAPS), wraps)
        if redactions:
            known = {
                int(r[0])
                for r in conn.execute(
                    select(REDACTIONS.c.log_index).where(
                        REDACTIONS.c.log_index >= start, REDACTIONS.c.log_index < end
                    )
                ).all()
            }
            fresh = [
                {"log_index": i, "tombstone_index": t} for i, t in redactions if i not in known
            ]
            if fresh:
                conn.execute(insert(REDACTIONS), fresh)

    def compact(self, limit: int = 4) -> int:
        """Merge the short batches of each complete aligned range ``[kN, (k+1)N)`` into one.

        Why: with ``max_age`` 0 a short batch is sealed after every checkpoint, so a new entry
        reaches partners within a round; merging them once the range is full keeps the batch
        count (hence wraps: partners x batches, and requests per sync) what tile-aligned
        sealing gives. The merged batch replaces them in one transaction; partners whose cursor
        lies inside it verify all of it and apply from their cursor (specs/feed.md section 2).
        A range is merged once its newest short batch is ``compact_age`` seconds old (partners
        that follow have fetched the short ones by then). Ranges a byte-capped batch split
        are left as they are. Returns ranges merged.
        """
        n = self.batch_entries
        with read_connection(self.engine) as conn:
            published = self._published(conn)
            rows = conn.execute(
                select(
                    BATCHES.c.start,
                    BATCHES.c.end,
                    BATCHES.c.version,
                    BATCHES.c.file,
                    BATCHES.c.size,
                    BATCHES.c.sealed_at,
                )
                .where(BATCHES.c.start >= self._compact_floor)
                .order_by(BATCHES.c.start)
            ).all()
        groups: dict[int, list[BatchInfo]] = {}
        newest: dict[int, int] = {}
        for r in rows:
            info = BatchInfo(int(r[0]), int(r[1]), int(r[2]), str(r[3]), int(r[4]))
            groups.setdefault(info.start // n, []).append(info)
            newest[info.start // n] = max(newest.get(info.start // n, 0), int(r[5]))
        merged = 0
        now = self.clock()
        for k in sorted(groups):
            group = groups[k]
            lo, hi = k * n, (k + 1) * n
            if hi > published or group[-1].end != hi:
                break  # the range is still filling
            if now - newest[k] < self.compact_age:
                break  # let followers fetch the short batches first
            if len(group) > 1 and group[0].start == lo:
                with read_connection(self.engine) as conn:
                    fits = self._byte_end(conn, lo, hi) == hi
                if fits:
                    if self._merge(lo, hi, group) is None:
                        break  # a withdrawal's tombstone is not published yet: next round
                    merged += 1
            self._compact_floor = hi
            if merged >= limit:
                break
        return merged

    def _merge(self, lo: int, hi: int, group: list[BatchInfo]) -> BatchInfo | None:
        binding = BatchBinding(self.keys.origin, lo, hi)
        with read_connection(self.engine) as conn:
            published = self._published(conn)
            try:
                records, redactions, revealed = self._records(conn, lo, hi, published)
            except _Postpone:
                return None
        key, sealed = seal_batch_fresh(encode_plaintext(lo, hi, records), binding)
        data = sealed.encode()
        name = self.files.write(data)
        version = group[0].version + 1  # batch keys are named (start, version): a new name
        vault = self.keys.vault
        vault.put_batch_key(lo, version, key)
        try:
            now = int(self.clock())
            with self.engine.begin() as conn:
                current = conn.execute(
                    select(BATCHES.c.start, BATCHES.c.version).where(
                        BATCHES.c.start >= lo, BATCHES.c.start < hi
                    )
                ).all()
                if sorted((int(a), int(b)) for a, b in current) != [
                    (b.start, b.version) for b in group
                ]:
                    raise InconsistentTreeError("another sealer changed the batches to merge")
                conn.execute(delete(WRAPS).where(WRAPS.c.start >= lo, WRAPS.c.start < hi))
                conn.execute(delete(BATCHES).where(BATCHES.c.start >= lo, BATCHES.c.start < hi))
                conn.execute(
                    insert(BATCHES).values(
                        start=lo, end=hi, version=version, file=name, size=len(data), sealed_at=now
                    )
                )
                self._record_wraps_and_redactions(conn, key, binding, version, redactions)
        except BaseException:
            vault.erase(batches=[(lo, version)])
            raise
        vault.erase(batches=[(b.start, b.version) for b in group])
        for b in group:
            if b.file != name:
                self.files.delete(b.file)
        if revealed and self._any_withdrawn(lo, hi, len(redactions)):
            vault.erase(batches=[(lo, version)])  # as in _seal: the re-seal follows
        return BatchInfo(lo, hi, version, name, len(data))

    def step(self) -> int:
        """One round (after the sequencer's): wraps, re-seals, new batches, merges.

        Returns the number of batches sealed, re-sealed or merged (0: the feed is unchanged).
        """
        with self._round:
            self.rewrap_partners()
            sealed = self.seal_ready()
            resealed = self.redact_withdrawn()
            merged = self.compact()
        return sealed + resealed + merged

    def wrap_new_partners(self) -> int:
        """Wrap every batch for partners just added or rotated, now, between two rounds.

        Called by a feed request of such a partner, only in the process holding the sequencer
        lock (the one writer of batches), so its first sync gets the whole sealed history
        instead of nothing until the next round (issue 18 finding 2)."""
        with self._round:
            return self.rewrap_partners()

    def due_in(self, conn: Connection, sealed: int, published: int) -> float | None:
        """Seconds until the published entries past ``sealed`` become due for sealing
        (0: at the next round), or None when none wait; the rule of :meth:`seal_ready`."""
        if sealed >= published:
            return None
        if (sealed // self.batch_entries + 1) * self.batch_entries <= published:
            return 0.0
        oldest = conn.execute(
            select(ENTRIES.c.created_at).where(ENTRIES.c.log_index == sealed)
        ).scalar()
        if oldest is None:
            return 0.0
        return max(0.0, int(oldest) + self.max_age - self.clock())
