"""The key store: every key that can decrypt a hash value, in DATA/keys.sqlite3 and nowhere else.

Why a separate file: a withdrawal must leave nothing that yields the withdrawn hash values, not
in the database's pages, its WAL, dead PostgreSQL tuples or any database backup. Ciphertexts
may linger in all of those, so the only thing erasure can rely on is destroying the keys, and
that is only possible where the hub controls every copy of them. So each entry has its own
random key, each feed batch version its own key, and those keys live only here: a small SQLite
file (mode 0600) in the data directory, never in PostgreSQL even when the hub uses a database
URL, never in the main database or its backups. Erasing deletes rows with ``secure_delete=ON``
(SQLite zeroes the freed bytes) and then runs ``wal_checkpoint(TRUNCATE)``, which copies the
zeroed pages into the main file and cuts the WAL (the only other place the keys were written)
to zero bytes, all synced before :meth:`KeyVault.erase` returns. Format and bounds:
specs/hub-storage.md section 4.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hub.db.engine import open_sqlite_read_only
from hub.db.multirow import insert_rows
from hub.handoff import parked_lock

__all__ = ["KEY_SIZE", "VAULT_NAME", "KeyVault", "VaultError"]

KEY_SIZE = 32
VAULT_NAME = "keys.sqlite3"
_CHUNK = 500  # SQLite's bound-parameter limit is far above this; keeps statements small
_BUSY_MS = 60_000
_CHECKPOINT_TRIES = 3  # each try waits up to the busy timeout

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entry_keys (
    entry_id TEXT PRIMARY KEY,
    key BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_keys (
    start INTEGER NOT NULL,
    version INTEGER NOT NULL,
    key BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (start, version)
);
"""


class VaultError(RuntimeError):
    """The key store cannot be used or could not erase; the message says what to do."""


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


@dataclass(slots=True)
class _PendingPut:
    """One request's keys, waiting for the transaction of its group."""

    rows: list[tuple[str, bytes, int]]
    done: bool = False
    error: Exception | None = None
    wake: threading.Lock = field(default_factory=parked_lock)  # released once per wait


class KeyVault:
    """Entry keys and feed batch keys with real delete semantics (one file, several processes).

    One connection per process, serialised by a lock (every call is a short transaction);
    processes sharing the data directory coordinate through SQLite's file locks, so the file
    must sit on a local file system (not NFS).
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        """``read_only``: for reports (``ncii-hub stats``): the file must exist, nothing is
        created or written (not even -wal/-shm files), every write method fails."""
        self.path = path
        self._lock = threading.Lock()
        self._group = threading.Lock()  # guards _pending and _flushing
        self._pending: list[_PendingPut] = []
        self._flushing = False
        if read_only:
            try:
                mode = path.stat().st_mode & 0o777
            except OSError as exc:
                raise VaultError(f"cannot open the key store {path}: {exc.strerror}") from None
            if mode & 0o077:
                raise VaultError(
                    f"{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}"
                )
            try:
                self._conn = open_sqlite_read_only(path, _BUSY_MS / 1000)
                self._conn.execute("SELECT count(*) FROM entry_keys").fetchall()
            except sqlite3.Error as exc:
                raise VaultError(f"cannot read the key store {path}: {exc}") from None
            return
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                raise VaultError(
                    f"{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}"
                ) from None
        else:
            os.close(fd)
        try:
            self._conn = sqlite3.connect(
                path, timeout=_BUSY_MS / 1000, isolation_level=None, check_same_thread=False
            )
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=FULL",
                "PRAGMA secure_delete=ON",
                # A multi-row insert's statement journal holds page images (other keys):
                # in memory, never in a temporary file outside this file's erasure.
                "PRAGMA temp_store=MEMORY",
                f"PRAGMA busy_timeout={_BUSY_MS}",
            ):
                self._conn.execute(pragma)
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise VaultError(f"cannot open the key store {path}: {exc}") from None

    def __repr__(self) -> str:
        return f"KeyVault({str(self.path)!r})"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- entry keys

    def put_entry_keys(self, keys: Iterable[tuple[str, bytes]]) -> None:
        """Store new entry keys durably before their ciphertexts are stored.

        Group commit: requests of this process that arrive while another one's commit is
        being synced are written together in the next transaction, so concurrent submissions
        share one fsync instead of queueing one each.
        """
        now = int(time.time())
        rows = [(entry_id, key, now) for entry_id, key in keys]
        if any(len(r[1]) != KEY_SIZE for r in rows):
            raise ValueError("entry keys are 32 bytes")
        mine = _PendingPut(rows)
        with self._group:
            self._pending.append(mine)
            leads = not self._flushing
            self._flushing = True
        if not leads:
            mine.wake.acquire()  # done, or handed the lead by the group before
        if not mine.done:  # lead: write everything queued so far, this request first
            with self._group:
                batch, self._pending = self._pending, []
            try:
                self._flush(batch)
            except BaseException:
                for item in batch:
                    if item.error is None:
                        item.error = VaultError("the key store writer failed; retry")
                raise
            finally:
                self._finish(batch)
        if mine.error is not None:
            raise mine.error

    def put_entry_key_groups(
        self, groups: Sequence[Sequence[tuple[str, bytes]]]
    ) -> list[VaultError | None]:
        """Store the keys of several requests durably in one transaction (one sync); for a
        caller that groups requests itself (hub.intakewriter). Returns, per request, None or
        the refusal: if the group's transaction fails, each request is written alone."""
        now = int(time.time())
        batch = [_PendingPut([(entry_id, key, now) for entry_id, key in keys]) for keys in groups]
        if any(len(r[1]) != KEY_SIZE for item in batch for r in item.rows):
            raise ValueError("entry keys are 32 bytes")
        self._flush(batch)
        return [item.error if isinstance(item.error, VaultError) else None for item in batch]

    def _finish(self, batch: list[_PendingPut]) -> None:
        """Wake each request of a written group, and hand the lead to the oldest waiting
        one: one wake-up per request (a condition's notify_all would wake every waiting
        thread once per group, only for most of them to wait again)."""
        with self._group:
            for item in batch:
                item.done = True
            following = self._pending[0] if self._pending else None
            if following is None:
                self._flushing = False
        for item in batch:
            item.wake.release()
        if following is not None:
            following.wake.release()

    def _flush(self, batch: list[_PendingPut]) -> None:
        """Write a group in one transaction; if that fails, each request alone (so one bad
        request fails only itself)."""
        into = "entry_keys (entry_id, key, created_at)"
        try:
            with self._write() as conn:  # a few statements for the whole group
                insert_rows(conn, into, [row for item in batch for row in item.rows])
            return
        except sqlite3.Error:
            if len(batch) == 1:
                batch[0].error = VaultError("the key store refused new entry keys")
                return
        for item in batch:
            try:
                with self._write() as conn:
                    insert_rows(conn, into, item.rows)
            except sqlite3.Error:
                item.error = VaultError("the key store refused new entry keys")

    def entry_keys(self, entry_ids: Sequence[str]) -> dict[str, bytes]:
        """The keys of those entries that still have one."""
        out: dict[str, bytes] = {}
        with self._lock:
            for part in _chunks(list(entry_ids)):
                marks = ",".join("?" * len(part))
                for entry_id, key in self._conn.execute(
                    f"SELECT entry_id, key FROM entry_keys WHERE entry_id IN ({marks})",  # noqa: S608
                    list(part),
                ).fetchall():
                    out[str(entry_id)] = bytes(key)
        return out

    def entry_key_ids(self, older_than: int | None = None) -> list[str]:
        """Every entry id with a key (optionally only keys stored before ``older_than``)."""
        with self._lock:
            if older_than is None:
                rows = self._conn.execute("SELECT entry_id FROM entry_keys").fetchall()
            else:
                rows = self._conn.execute(
                    "SELECT entry_id FROM entry_keys WHERE created_at < ?", (older_than,)
                ).fetchall()
        return [str(r[0]) for r in rows]

    # -- batch keys

    def put_batch_key(self, start: int, version: int, key: bytes) -> None:
        """Store the key of one batch version durably, before the batch row names it."""
        if len(key) != KEY_SIZE:
            raise ValueError("batch keys are 32 bytes")
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO batch_keys (start, version, key, created_at) "
                "VALUES (?,?,?,?)",
                (start, version, key, int(time.time())),
            )

    def batch_key(self, start: int, version: int) -> bytes | None:
        with self._lock:
            # fetchall: a half-read cursor would keep a read transaction open and hold
            # back the TRUNCATE checkpoint of the next erase.
            rows = self._conn.execute(
                "SELECT key FROM batch_keys WHERE start = ? AND version = ?", (start, version)
            ).fetchall()
        return bytes(rows[0][0]) if rows else None

    def batch_key_ids(self) -> list[tuple[int, int]]:
        """Every (batch start, version) with a key."""
        with self._lock:
            rows = self._conn.execute("SELECT start, version FROM batch_keys").fetchall()
        return [(int(r[0]), int(r[1])) for r in rows]

    # -- erasure

    def erase(
        self,
        entry_ids: Sequence[str] = (),
        batches: Sequence[tuple[int, int]] = (),
    ) -> int:
        """Destroy these keys for good; returns how many rows were deleted.

        Always ends with a TRUNCATE checkpoint (even when nothing was deleted now: an earlier
        erase may have died before its checkpoint), so on return no page of keys.sqlite3 or
        its WAL holds a copy of any erased key. Raises VaultError if the checkpoint cannot
        complete (another process kept a read open past the busy timeout); callers then fail
        the request, and the next erase or start-up reconciliation finishes the job.
        """
        deleted = 0
        if entry_ids or batches:
            with self._write() as conn:
                for part in _chunks(list(entry_ids)):
                    marks = ",".join("?" * len(part))
                    cur = conn.execute(
                        f"DELETE FROM entry_keys WHERE entry_id IN ({marks})",  # noqa: S608
                        list(part),
                    )
                    deleted += max(cur.rowcount, 0)
                for start, version in batches:
                    cur = conn.execute(
                        "DELETE FROM batch_keys WHERE start = ? AND version = ?", (start, version)
                    )
                    deleted += max(cur.rowcount, 0)
        self._checkpoint()
        return deleted

    def _checkpoint(self) -> None:
        with self._lock:
            for _ in range(_CHECKPOINT_TRIES):
                result = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                busy = result[0][0]
                if busy == 0:
                    return
                time.sleep(0.05)
        raise VaultError(
            f"the key store {self.path} could not be checkpointed (another hub process keeps "
            "it busy); the erasure is retried on the next request and at the next start"
        )
