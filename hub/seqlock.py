"""Who may sequence: exactly one hub process per log.

PostgreSQL: a session advisory lock held on a dedicated connection (released by the server if
the process dies). SQLite: an fcntl lock on DATA/sequencer.lock (released by the kernel if the
process dies). The storage compare-and-swap protects the log even if a lock were ever lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Protocol

__all__ = ["FileLock", "PostgresLock", "SequencerLock", "lock_for"]

_ADVISORY_KEY = 0x6E636969_5345  # "ncii" "SE"


class SequencerLock(Protocol):
    def acquire(self) -> bool:
        """Try once, without waiting; True if this process now holds the lock."""
        ...

    def still_held(self) -> bool:
        """Whether the lock is still ours (a dropped database session loses it)."""
        ...

    def release(self) -> None: ...


class FileLock:
    """An exclusive, non-blocking flock on a file in the data directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class PostgresLock:
    """pg_try_advisory_lock on its own connection, kept open while the lock is held."""

    def __init__(self, sqlalchemy_url: str) -> None:
        self.url = sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._conn: object | None = None

    def acquire(self) -> bool:
        import psycopg

        if self._conn is not None:
            return True
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (_ADVISORY_KEY,)).fetchone()
        if row is None or not row[0]:
            conn.close()
            return False
        self._conn = conn
        return True

    def still_held(self) -> bool:
        import psycopg

        conn = self._conn
        if not isinstance(conn, psycopg.Connection):
            return False
        try:
            conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            with contextlib.suppress(Exception):
                conn.close()
            self._conn = None
            return False

    def release(self) -> None:
        import psycopg

        conn = self._conn
        self._conn = None
        if isinstance(conn, psycopg.Connection):
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_KEY,))
            conn.close()


def lock_for(database_url: str, data_dir: Path) -> SequencerLock:
    """The right lock for this database."""
    if database_url.startswith("postgresql"):
        return PostgresLock(database_url)
    return FileLock(data_dir / "sequencer.lock")
