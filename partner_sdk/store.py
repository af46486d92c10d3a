"""The partner's local SQLite store: verified entries by log index, cursor and checkpoint.

Why one transaction per batch: cursor, trusted checkpoint and the batch's additions and
withdrawals move together or not at all, so an interrupted or failed sync leaves the last
good state and the next sync resumes at the cursor. Schema: specs/partner-store.md.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from partner_sdk.batch import (
    ApplyCounts,
    BatchPlan,
    PackedAdditions,
    Record,
    plan_batch,
    unpack_additions,
)
from partner_sdk.errors import RedactionError, StoreError, UsageError

__all__ = [
    "SCHEMA_VERSION",
    "ApplyCounts",
    "Lag",
    "Record",
    "Store",
    "StoreState",
    "TrustedCheckpoint",
    "create_private",
]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  origin TEXT, log_key TEXT, hub_url TEXT,
  cursor INTEGER NOT NULL DEFAULT 0,
  checkpoint BLOB, checkpoint_size INTEGER, checkpoint_root BLOB,
  synced_at INTEGER
);
INSERT OR IGNORE INTO sync_state (id, cursor) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS entries (
  log_index INTEGER PRIMARY KEY,
  kind INTEGER NOT NULL CHECK (kind IN (1, 2)),
  algorithm TEXT,
  hash BLOB,
  quality INTEGER,
  withdrawn INTEGER NOT NULL DEFAULT 0,
  withdrawn_by INTEGER,
  withdraws INTEGER,
  redacted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS vpdq_frames (
  log_index INTEGER NOT NULL,
  frame INTEGER NOT NULL,
  quality INTEGER NOT NULL,
  hash BLOB NOT NULL,
  timestamp REAL NOT NULL,
  PRIMARY KEY (log_index, frame)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_redactions (
  log_index INTEGER PRIMARY KEY,
  tombstone_index INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_health (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  erase_pending INTEGER NOT NULL DEFAULT 0,
  lag_since INTEGER, lag_target INTEGER
);
INSERT OR IGNORE INTO sync_health (id) VALUES (1);
"""

_HASH_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_entries_hash ON entries (algorithm, hash) WHERE hash IS NOT NULL"
)
_SLOT = 32
# One run of packed additions (partner_sdk.batch.PackedAdditions): row i is log index
# start + i; its code is the PDQ quality or names MD5 / SHA-256; its hash is slot i of the blob
# (substr of a BLOB counts bytes), an MD5 the first 16 bytes of its slot. The literals are
# CODE_MD5, CODE_SHA256 and _SLOT (a test checks they agree).
_INSERT_PACKED = (
    "INSERT INTO entries (log_index, kind, algorithm, hash, quality) "
    "SELECT ?1 + key, 1, CASE value WHEN 101 THEN 'md5' WHEN 102 THEN 'sha256' ELSE 'pdq' END, "
    "substr(?3, key * 32 + 1, CASE value WHEN 101 THEN 16 ELSE 32 END), "
    "CASE WHEN value BETWEEN 0 AND 100 THEN value END "
    "FROM json_each(?2)"
)
SORT_THREADS = max(1, min(4, (os.cpu_count() or 1)))
BULK_MIN_ENTRIES = 50_000
"""A sync that will apply at least this many entries (and at least as many as the store holds)
loads them without the hash index and builds it once at the end (:meth:`Store.bulk_load`)."""


@dataclass(frozen=True, slots=True)
class TrustedCheckpoint:
    note: bytes
    size: int
    root: bytes


@dataclass(frozen=True, slots=True)
class StoreState:
    origin: str | None
    log_key: str | None
    hub_url: str | None
    cursor: int
    checkpoint: TrustedCheckpoint | None


@dataclass(frozen=True, slots=True)
class Lag:
    """Verified entries the hub has not delivered: since when, and up to which size."""

    since: int
    target: int


def _has_json(conn: sqlite3.Connection) -> bool:
    """True if this SQLite has json_each (built in since 3.38; JSON1 in most older builds)."""
    try:
        conn.execute("SELECT count(*) FROM json_each('[1]')").fetchone()
    except sqlite3.Error:
        return False
    return True


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (O_EXCL) unless it exists; tighten it if it does.

    Why before SQLite opens it: SQLite creates a missing database with 0644 (less the umask)
    and gives its -wal and -shm files the database's mode, so the mode must be right first.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
    else:
        os.close(fd)


class Store:
    """Open (or create) DIR/store.sqlite3; one writer at a time (SQLite locking).

    The database, its -wal and -shm are 0600 (they hold plaintext hashes); withdrawn values
    are erased from every one of them (:meth:`erase`, specs/partner-store.md section 3).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            create_private(path)
            for suffix in ("-wal", "-shm"):
                side = path.with_name(path.name + suffix)
                if side.exists():
                    os.chmod(side, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot create the store {path}: {exc.strerror}") from None
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: every batch commit is atomic; after a power loss the last few
            # commits may be undone, and the next sync simply re-applies those batches.
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA secure_delete=ON")
            # 64 MiB of page cache: the hash index takes random inserts; with the 2 MiB default
            # a full sync of a million entries spends its time re-reading index pages.
            self.conn.execute("PRAGMA cache_size=-65536")
            self._json = _has_json(self.conn)
            version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
            if version not in (0, SCHEMA_VERSION):
                raise StoreError(f"{path} has store schema {version}; this SDK knows 1")
            fresh = version == 0
            # One transaction: a reader (the match service, a monitor) never sees the tables
            # without their single rows.
            self.conn.executescript(
                "BEGIN IMMEDIATE;"
                + _SCHEMA
                + (_HASH_INDEX + ";" if fresh else "")
                + f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )
        except sqlite3.Error as exc:
            conn = getattr(self, "conn", None)
            if conn is not None and conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"cannot open the store {path}: {exc}") from None

    def close(self) -> None:
        self.conn.close()

    def state(self) -> StoreState:
        row = self.conn.execute(
            "SELECT origin, log_key, hub_url, cursor, checkpoint, checkpoint_size, "
            "checkpoint_root FROM sync_state WHERE id = 1"
        ).fetchone()
        cp = (
            None if row[4] is None else TrustedCheckpoint(bytes(row[4]), int(row[5]), bytes(row[6]))
        )
        return StoreState(row[0], row[1], row[2], int(row[3]), cp)

    def pin(self, origin: str, log_key: str, hub_url: str) -> None:
        """Remember which log this store follows; a store never switches logs."""
        state = self.state()
        if state.log_key is not None and state.log_key != log_key:
            raise UsageError("this store follows another log key; use a new --dir for another log")
        self.conn.execute(
            "UPDATE sync_state SET origin = ?, log_key = ?, hub_url = ? WHERE id = 1",
            (origin, log_key, hub_url),
        )

    def wants_bulk_load(self, incoming: int) -> bool:
        """True if ``incoming`` new entries are better loaded without the hash index."""
        if incoming < BULK_MIN_ENTRIES:
            return False
        held = int(self.conn.execute("SELECT max(log_index) FROM entries").fetchone()[0] or -1)
        return incoming >= held + 1

    def defer_hash_index(self) -> None:
        """Drop the hash index before a bulk load (:meth:`build_hash_index` restores it).

        Why: its key is a random hash, so once it outgrows the page cache every insert reads
        and writes a random page; the table itself is keyed by the log index and only appends.
        Building the index once at the end is one sort. Readers (the match service) still get
        correct answers meanwhile, by a table scan. An interrupted load is harmless: the next
        sync builds a missing index first (unless it is a bulk load again).
        """
        try:
            self.conn.execute("DROP INDEX IF EXISTS ix_entries_hash")
        except sqlite3.Error as exc:
            raise StoreError(f"the store could not prepare a bulk load: {exc}") from None

    def build_hash_index(self) -> None:
        """Create the hash index if it is missing (after a bulk load).

        The build is one sort of every live hash; SQLite's worker threads share it out over
        the cores (``PRAGMA threads``), and it is the one part of a bulk sync that runs alone.
        """
        try:
            self.conn.execute(f"PRAGMA threads = {SORT_THREADS}")
            self.conn.execute(_HASH_INDEX)
        except sqlite3.Error as exc:
            raise StoreError(f"the store could not build its hash index: {exc}") from None

    def _set_checkpoint(self, cp: TrustedCheckpoint, now: int) -> None:
        self.conn.execute(
            "UPDATE sync_state SET checkpoint = ?, checkpoint_size = ?, checkpoint_root = ?, "
            "synced_at = ? WHERE id = 1",
            (cp.note, cp.size, cp.root, now),
        )

    def trust_checkpoint(self, cp: TrustedCheckpoint, now: int) -> None:
        """Store a checkpoint verified consistent with the previous one."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self._set_checkpoint(cp, now)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def _insert_packed(self, run: PackedAdditions) -> None:
        """Insert one run of packed additions (:class:`partner_sdk.batch.PackedAdditions`)
        with one statement: SQLite reads the codes with json_each and cuts the hashes."""
        count = len(run.hashes) // _SLOT
        if len(run.hashes) != count * _SLOT:
            raise StoreError("a prepared batch's packed hashes are not whole slots")
        if self._json:
            cur = self.conn.execute(_INSERT_PACKED, (run.start, run.codes, run.hashes))
            inserted = cur.rowcount
        else:  # an SQLite built without JSON: decode here (slower, same rows)
            rows = unpack_additions(BatchPlan([], [], [], {}, [], packed=[run]))
            self.conn.executemany(
                "INSERT INTO entries (log_index, kind, algorithm, hash, quality) "
                "VALUES (?, 1, ?, ?, ?)",
                rows,
            )
            inserted = len(rows)
        if inserted != count:
            raise StoreError("a prepared batch's packed codes and hashes disagree")

    def apply_batch(
        self,
        start: int,
        end: int,
        records: Sequence[Record] | BatchPlan,
        cp: TrustedCheckpoint,
        now: int,
    ) -> ApplyCounts:
        """Apply one verified batch, cursor and checkpoint in ONE transaction (all or nothing).

        ``records`` may come already planned (:func:`partner_sdk.batch.plan_batch`, which a
        sync runs in its worker processes); the checks against the store happen here.
        """
        plan = records if isinstance(records, BatchPlan) else plan_batch(records, cp.size)
        counts = replace(plan.counts)
        frames, pending, withdraws = plan.frames, plan.pending, plan.withdraws
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            cursor = int(c.execute("SELECT cursor FROM sync_state WHERE id = 1").fetchone()[0])
            if cursor != start:
                raise StoreError("the store's cursor moved (another sync ran at the same time)")
            for target, tomb in withdraws:
                found = c.execute(
                    "SELECT kind, withdrawn, redacted FROM entries WHERE log_index = ?", (target,)
                ).fetchone()
                if found is None or found[0] != 1:
                    raise RedactionError("a tombstone withdraws an entry that is not an addition")
                if found[2]:
                    named = c.execute(
                        "SELECT tombstone_index FROM pending_redactions WHERE log_index = ?",
                        (target,),
                    ).fetchone()
                    if named is None or int(named[0]) != tomb:
                        raise RedactionError("a redaction names another tombstone")
                    c.execute("DELETE FROM pending_redactions WHERE log_index = ?", (target,))
                    continue
                if found[1]:
                    raise RedactionError("a tombstone withdraws an entry already withdrawn")
                c.execute(
                    "UPDATE entries SET hash = NULL, quality = NULL, withdrawn = 1, "
                    "withdrawn_by = ? WHERE log_index = ?",
                    (tomb, target),
                )
                c.execute("DELETE FROM vpdq_frames WHERE log_index = ?", (target,))
                counts.withdrawn += 1
            c.executemany(
                "INSERT INTO entries (log_index, kind, algorithm, hash, quality) "
                "VALUES (?, 1, ?, ?, ?)",
                plan.additions,
            )
            for run in plan.packed:
                self._insert_packed(run)
            if plan.rows:
                c.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", plan.rows)
            if frames:
                c.executemany("INSERT INTO vpdq_frames VALUES (?, ?, ?, ?, ?)", frames)
            if pending:
                c.executemany("INSERT INTO pending_redactions VALUES (?, ?)", pending.items())
            unconfirmed = c.execute(
                "SELECT count(*) FROM pending_redactions WHERE tombstone_index < ?", (end,)
            ).fetchone()[0]
            if unconfirmed:
                raise RedactionError("a redaction's tombstone does not withdraw that entry")
            c.execute("UPDATE sync_state SET cursor = ? WHERE id = 1", (end,))
            self._set_checkpoint(cp, now)
            if counts.withdrawn:
                c.execute("UPDATE sync_health SET erase_pending = 1 WHERE id = 1")
            c.execute("COMMIT")
        except sqlite3.Error as exc:
            c.execute("ROLLBACK")
            raise StoreError(f"the store could not apply a batch: {exc}") from None
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return counts

    def erase_pending(self) -> bool:
        """True if withdrawals were applied since the last :meth:`erase`."""
        row = self.conn.execute("SELECT erase_pending FROM sync_health WHERE id = 1").fetchone()
        return bool(row[0])

    def erase(self) -> None:
        """Remove every trace of withdrawn values from the store's files (if any are pending).

        Why VACUUM: secure_delete zeroes a value where it is deleted, but SQLite leaves stale
        copies of cells in the unallocated gap of pages it rebalanced earlier (a cell moved to
        a sibling page stays behind as garbage), and the WAL keeps earlier versions of every
        page. VACUUM rebuilds the database from its live rows only; the TRUNCATE checkpoint
        then writes it over the old file and empties the WAL. Cost: one rewrite of the store
        (about 2.5 s per million entries), only after syncs that withdrew something.
        """
        if not self.erase_pending():
            return
        try:
            self.conn.execute("VACUUM")
            self.conn.execute("UPDATE sync_health SET erase_pending = 0 WHERE id = 1")
        except sqlite3.Error as exc:
            raise StoreError(f"the store could not erase withdrawn values: {exc}") from None
        self.erase_wal()

    def erase_wal(self) -> None:
        """Copy the WAL into the database and truncate it to zero bytes.

        TRUNCATE waits (busy timeout) for readers such as the match service to leave their
        snapshot; if one holds it longer, StoreError (values may remain in the WAL until the
        next sync).
        """
        for _attempt in range(3):
            try:
                busy, _log, _done = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"the store could not checkpoint its WAL: {exc}") from None
            if not busy:
                return
        raise StoreError(
            f"a reader kept {self.path.name} busy: withdrawn hash values may remain in its WAL "
            "until the next sync (stop long reads of the store)"
        )

    def lag(self) -> Lag | None:
        """The recorded feed gap, if the last sync ended behind its verified checkpoint."""
        row = self.conn.execute(
            "SELECT lag_since, lag_target FROM sync_health WHERE id = 1"
        ).fetchone()
        return None if row[0] is None else Lag(int(row[0]), int(row[1]))

    def record_lag(self, cursor: int, size: int, now: int) -> Lag | None:
        """Update the gap after a sync that ended at ``cursor`` of a verified ``size``.

        The gap's age counts from the first sync that saw entries it still lacks: it restarts
        only once the cursor passed every entry that sync had verified (a hub that keeps
        sealing is never "behind for long"; one that withholds a range is).
        """
        old = self.lag()
        if cursor >= size:
            new = None
        elif old is None or cursor >= old.target:
            new = Lag(now, size)
        else:
            new = old
        if new != old:
            self.conn.execute(
                "UPDATE sync_health SET lag_since = ?, lag_target = ? WHERE id = 1",
                (None, None) if new is None else (new.since, new.target),
            )
        return new

    def counts(self) -> dict[str, int]:
        """Live hashes by algorithm, plus tombstones, withdrawn and pending redactions."""
        out = {"pdq": 0, "md5": 0, "sha256": 0, "vpdq": 0}
        for alg, n in self.conn.execute(
            "SELECT algorithm, count(*) FROM entries WHERE kind = 1 AND withdrawn = 0 "
            "GROUP BY algorithm"
        ):
            out[str(alg)] = int(n)
        one = self.conn.execute(
            "SELECT (SELECT count(*) FROM entries WHERE kind = 2), "
            "(SELECT count(*) FROM entries WHERE withdrawn = 1), "
            "(SELECT count(*) FROM pending_redactions), (SELECT count(*) FROM entries)"
        ).fetchone()
        out.update(tombstones=one[0], withdrawn=one[1], pending_redactions=one[2], entries=one[3])
        return out

    def live_hashes(self) -> set[tuple[str, bytes]]:
        """Every live (algorithm, hash) and vPDQ frame hash: what matching will index."""
        out = {
            (str(a), bytes(h))
            for a, h in self.conn.execute(
                "SELECT algorithm, hash FROM entries WHERE hash IS NOT NULL"
            )
        }
        out |= {("vpdq", bytes(h)) for (h,) in self.conn.execute("SELECT hash FROM vpdq_frames")}
        return out
