"""hub.db.bulk: a group's rows go to SQLite in a few multi-row statements, not one statement
per row (Python's sqlite3 releases and re-takes the GIL per statement step, and under load
each take-back waited up to a switch interval while the write lock was held)."""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import event, text

from crypto.commitment import LeafData, LeafKind, new_salt
from crypto.merkle import EMPTY_ROOT
from hub.db.bulk import MAX_ROWS, chunk_sizes, insert_rows
from hub.db.engine import create_schema, make_engine
from hub.keystore import load_keys
from hub.sequencer import sign_tree_head
from hub.storage import NewEntry, ReplayRecord, SqlStorage
from hub.vault import KeyVault


@pytest.mark.parametrize(
    ("count", "sizes"),
    [(0, []), (1, [1]), (7, [4, 2, 1]), (256, [256]), (300, [256, 32, 8, 4]), (513, [256, 256, 1])],
)
def test_chunk_sizes_are_powers_of_two_summing_to_the_count(count: int, sizes: list[int]) -> None:
    assert chunk_sizes(count) == sizes
    assert sum(chunk_sizes(count, 8)) == count and max(chunk_sizes(count, 8), default=0) <= 8


@pytest.mark.parametrize("count", [1, 3, 127, 128, 129, 300, 1000])
@pytest.mark.parametrize("width", [1, 3, 7])
def test_every_row_lands_in_order_within_the_oldest_parameter_limit(count: int, width: int) -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # SQLite before 3.32
    columns = ", ".join(f"c{i}" for i in range(width))
    conn.execute(f"CREATE TABLE t (n INTEGER PRIMARY KEY, {columns})")
    rows = [tuple(f"{r}.{c}" for c in range(width)) for r in range(count)]
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    insert_rows(conn.cursor(), f"t ({columns})", rows)
    conn.set_trace_callback(None)
    assert conn.execute(f"SELECT {columns} FROM t ORDER BY n").fetchall() == rows
    per_statement = min(MAX_ROWS, 1 << (999 // width).bit_length() - 1)
    assert len(statements) <= count // per_statement + per_statement.bit_length()


def test_a_group_of_300_entries_is_a_few_statements(tmp_path: Path) -> None:
    keys = load_keys(tmp_path / "data", "test.example/log")
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    create_schema(engine, sign_tree_head(keys, 0, EMPTY_ROOT))
    storage = SqlStorage(engine)
    statements: list[str] = []

    @event.listens_for(engine, "connect")
    def trace(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    engine.dispose()  # new connections, traced
    group = []
    for _ in range(30):
        entries = [
            NewEntry(
                secrets.token_hex(16),
                LeafData.for_entry(LeafKind.ADDITION, secrets.token_bytes(40), new_salt()).encode(),
                b"sealed",
            )
            for _ in range(10)
        ]
        group.append((secrets.token_hex(8), entries, secrets.token_bytes(48)))
    with storage._group_lock:  # queue all 30, then commit them as one group
        storage._committing = True

    def run(case: str, entries: list[NewEntry], replay: bytes) -> None:
        record = ReplayRecord(secrets.token_bytes(32), 202, b"pending")
        storage.submit(case, b"p" * 32, entries, replay, record, 5000, 12, 1000)

    threads = [threading.Thread(target=run, args=g) for g in group]
    for t in threads:
        t.start()
    while True:
        with storage._group_lock:
            if len(storage._queue) == len(group):
                break
        time.sleep(0.005)
    statements.clear()
    storage._finish([])
    for t in threads:
        t.join(30)
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    # entries: 300 rows of 7 columns (128-row chunks: 128, 128, 32, 8, 4); replays: 30 rows
    # of 5 (16, 8, 4, 2); cases: 30 rows of 5 (the same): 13 statements, not 360.
    assert len(inserts) <= 13, len(inserts)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM entries")).scalar_one() == 300
        assert conn.execute(text("SELECT count(*) FROM replays")).scalar_one() == 30
    storage.close()
    engine.dispose()


def test_the_key_store_writes_a_group_in_a_few_statements(tmp_path: Path) -> None:
    vault = KeyVault(tmp_path / "keys.sqlite3")
    statements: list[str] = []
    vault._conn.set_trace_callback(statements.append)
    keys = [(secrets.token_hex(16), secrets.token_bytes(32)) for _ in range(300)]
    vault.put_entry_keys(keys)
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 4  # 256 + 32 + 8 + 4 rows of 3 columns
    assert vault.entry_keys([k for k, _ in keys]) == dict(keys)
    vault.close()
