"""Engines for SQLite (default, a file in the data dir) and PostgreSQL, and schema creation.

SQLite is set up for durability and for several writers: WAL, synchronous=FULL (a commit is on
disk before the hub answers 202), secure_delete (deleted ciphertexts are overwritten), and
BEGIN IMMEDIATE so that a read-then-write transaction waits for the lock instead of failing.
For the intake's group commits (specs/hub-storage.md section 8): temporary files (the statement
journal of a multi-row insert) in memory, never in an unlinked file in the system's temporary
directory; a 16 MiB page cache per connection; a checkpoint every 10,000 WAL pages instead of
1,000, so that an index page written by many group commits is copied into the database once.
A new SQLite file is created with mode 0600 whatever the umask; SQLite gives its -wal and -shm
files the database file's mode, so they are 0600 too. The database holds no key able to decrypt
a hash value (those live in the key store, hub.vault); a database written by an older hub that
kept wrapped case or batch keys in it is refused (:class:`LegacyDatabaseError`).
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, inspect, make_url, select, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from crypto.tree_state import TreeState
from hub.db.models import LogStateRow, table_of

__all__ = [
    "LegacyDatabaseError",
    "create_schema",
    "is_postgres",
    "make_engine",
    "make_read_only_engine",
    "open_sqlite_read_only",
    "read_connection",
]

# Arbitrary constant key for the schema-creation advisory lock (PostgreSQL).
_SCHEMA_LOCK_KEY = 0x6E636969_0001


class LegacyDatabaseError(ValueError):
    """The database was written by a hub that kept decryption keys in it; it is not migrated."""


def _refuse_legacy(conn: Connection) -> None:
    """Refuse a database whose ``cases.wrapped_key`` / ``feed_batches.wrapped_key`` exist.

    Why refuse instead of migrating: those keys were wrapped by master.key, so every earlier
    backup of such a database, with the current master.key, opens every entry ever stored;
    moving the keys out now could not make those backups harmless.
    """
    inspector = inspect(conn)
    for table in ("cases", "feed_batches"):
        if inspector.has_table(table) and any(
            c["name"] == "wrapped_key" for c in inspector.get_columns(table)
        ):
            raise LegacyDatabaseError(
                f"this database was written by an older hub that kept wrapped keys in "
                f"{table}.wrapped_key, which this hub version never does "
                "(specs/hub-storage.md section 4.5); it cannot be migrated in place. Start "
                "this hub with a new data directory and database, and destroy the old "
                "database, its backups and the old master.key together"
            )


def is_postgres(engine: Engine) -> bool:
    """Whether the engine talks to PostgreSQL (else SQLite)."""
    return engine.dialect.name == "postgresql"


def read_connection(engine: Engine) -> Connection:
    """A connection for read-only work (on SQLite: a deferred, snapshot transaction)."""
    return engine.connect().execution_options(ncii_read_only=True)


def _create_private_file(url: str) -> None:
    """Create the SQLite file of ``url`` empty with mode 0600 if it does not exist yet (an
    empty file is a valid empty database); existing files keep their mode."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (sqlite:///... or postgresql+psycopg://...)."""
    if url.startswith("sqlite"):
        _create_private_file(url)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 60},
            pool_size=16,
            max_overflow=16,
            hide_parameters=True,  # bound values never reach logs or error messages
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA secure_delete=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.execute("PRAGMA cache_size=-16384")
            cur.execute("PRAGMA wal_autocheckpoint=10000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Readers take no write lock (WAL gives them a snapshot); writers take it up front.
            if conn.get_execution_options().get("ncii_read_only"):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(
        url, pool_size=10, max_overflow=20, pool_pre_ping=True, hide_parameters=True
    )


def open_sqlite_read_only(path: Path, timeout: float = 60.0) -> sqlite3.Connection:
    """A connection that cannot write ``path`` nor create anything beside it (reports).

    Why not ``mode=ro`` alone: on a WAL database SQLite then still creates the -wal and -shm
    files when they are missing (and leaves them behind), which a report run on a stopped hub,
    a backup or a read-only folder must not do. Without a -wal file no process has the
    database open in WAL mode, so it is read as immutable (no locks, no files); with one (a
    hub is running, or died), read-only through the hub's WAL. A hub that starts during such
    an immutable read can make it fail (malformed page), never make it write.
    """
    if not path.is_file():
        raise sqlite3.OperationalError(f"{path} does not exist")
    options = "mode=ro" if Path(f"{path}-wal").exists() else "mode=ro&immutable=1"
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?{options}"
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)
    conn.isolation_level = None  # transactions are begun explicitly (snapshot reads)
    return conn


def make_read_only_engine(url: str) -> Engine:
    """An engine for reports: SQLite through :func:`open_sqlite_read_only` (never creates the
    file), PostgreSQL with ``default_transaction_read_only`` on (a write is refused)."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if not database or database == ":memory:" or database.startswith("file:"):
            raise ValueError("a read-only report needs the path of a SQLite file")
        path = Path(database)
        engine = create_engine(
            "sqlite://",
            creator=lambda: open_sqlite_read_only(path),
            hide_parameters=True,
        )

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(
        url,
        pool_size=2,
        max_overflow=0,
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args={"options": "-c default_transaction_read_only=on"},
    )


def create_schema(engine: Engine, empty_checkpoint: bytes) -> None:
    """Create tables if missing and the log_state row (size 0) if absent; safe to race."""
    log_state = table_of(LogStateRow)
    with engine.begin() as conn:
        if is_postgres(engine):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_KEY})
        _refuse_legacy(conn)
        SQLModel.metadata.create_all(conn)
        # create_all adds indexes only with new tables: these came later (the case puzzle;
        # the leaf-hash index of sequenced entries only, which replaced one of every entry).
        conn.execute(text("CREATE INDEX IF NOT EXISTS ix_cases_created ON cases (created_at)"))
        conn.execute(text("DROP INDEX IF EXISTS ix_entries_leaf_hash"))
        conn.execute(
            text(
                "CREATE INDEX IF NOT EXISTS ix_entries_logged_leaf ON entries (leaf_hash) "
                "WHERE log_index IS NOT NULL"
            )
        )
        if conn.execute(select(log_state.c.id).where(log_state.c.id == 1)).first() is None:
            empty = TreeState.empty().to_bytes()
            conn.execute(
                insert(log_state).values(
                    id=1,
                    size=0,
                    state=empty,
                    published_size=0,
                    published_state=empty,
                    checkpoint=empty_checkpoint,
                )
            )
