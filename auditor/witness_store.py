"""The witness's durable record: the latest cosigned checkpoint per log, in SQLite.

Why SQLite: tlog-witness requires that checking the old size against the stored one and
storing the new checkpoint happen atomically, or two concurrent requests could roll the record
back or cosign two roots at one size. ``BEGIN IMMEDIATE`` takes the database's write lock
before the record is read, so every add-checkpoint (in this process or another one on the same
file) runs its read-check-write alone; the commit is durable (WAL, synchronous=FULL) before the
witness answers. Layout: specs/witness.md §4.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from auditor.errors import ConfigError

__all__ = ["LogRecord", "WitnessStore"]

SCHEMA_VERSION: Final = 1
MAX_REFUSALS: Final = 1000
"""Refused (but validly signed) requests kept as possible evidence, per log."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS logs (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL CHECK (size >= 0),
    root BLOB NOT NULL CHECK (length(root) = 32),
    note BLOB NOT NULL,
    cosigned_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    status INTEGER NOT NULL,
    old_size INTEGER NOT NULL,
    request BLOB NOT NULL,
    at INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class LogRecord:
    """The latest checkpoint the witness cosigned for one origin."""

    origin: str
    size: int
    root: bytes
    note: bytes
    cosigned_at: int


class WitnessStore:
    """Latest cosigned checkpoint per origin, with an atomic read-check-write transaction."""

    def __init__(self, path: Path) -> None:
        if path.is_dir():
            path = path / "witness.sqlite3"
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
            with conn:
                conn.executescript(_SCHEMA)
                row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                if row is None:
                    conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                elif row[0] != str(SCHEMA_VERSION):
                    raise ConfigError(f"{path}: witness state of unknown version {row[0]}")
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"{path}: cannot open the witness state: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        # One connection, used under self._lock only; other processes on the same file are
        # kept out by SQLite's own write lock (BEGIN IMMEDIATE).
        if self._conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Close the database connection (a later call reopens it)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Exclusive read-check-write: commits if the block returns, rolls back if it raises."""
        with self._lock:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def get(self, origin: str) -> LogRecord | None:
        """The latest record for ``origin`` (a snapshot; use a transaction to act on it)."""
        with self._lock:
            return Transaction(self._connect()).get(origin)

    def all(self) -> list[LogRecord]:
        """Every log the witness has cosigned, by origin."""
        with self._lock:
            rows = (
                self._connect()
                .execute("SELECT origin, size, root, note, cosigned_at FROM logs ORDER BY origin")
                .fetchall()
            )
        return [LogRecord(r[0], r[1], bytes(r[2]), bytes(r[3]), r[4]) for r in rows]

    def refusals(self, origin: str) -> list[tuple[int, int, bytes]]:
        """(status, old size, request body) of refused requests kept for ``origin``."""
        with self._lock:
            rows = (
                self._connect()
                .execute(
                    "SELECT status, old_size, request FROM refusals WHERE origin=? ORDER BY id",
                    (origin,),
                )
                .fetchall()
            )
        return [(r[0], r[1], bytes(r[2])) for r in rows]


class Transaction:
    """Reads and writes inside one :meth:`WitnessStore.transaction`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def get(self, origin: str) -> LogRecord | None:
        row = self._conn.execute(
            "SELECT origin, size, root, note, cosigned_at FROM logs WHERE origin=?", (origin,)
        ).fetchone()
        if row is None:
            return None
        return LogRecord(row[0], row[1], bytes(row[2]), bytes(row[3]), row[4])

    def put(self, record: LogRecord) -> None:
        self._conn.execute(
            "INSERT INTO logs (origin, size, root, note, cosigned_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(origin) DO UPDATE SET size=excluded.size, root=excluded.root, "
            "note=excluded.note, cosigned_at=excluded.cosigned_at",
            (record.origin, record.size, record.root, record.note, record.cosigned_at),
        )

    def add_refusal(self, origin: str, status: int, old_size: int, request: bytes, at: int) -> None:
        self._conn.execute(
            "INSERT INTO refusals (origin, status, old_size, request, at) VALUES (?, ?, ?, ?, ?)",
            (origin, status, old_size, request, at),
        )
        self._conn.execute(
            "DELETE FROM refusals WHERE origin=? AND id NOT IN "
            "(SELECT id FROM refusals WHERE origin=? ORDER BY id DESC LIMIT ?)",
            (origin, origin, MAX_REFUSALS),
        )
