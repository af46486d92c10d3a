"""hub.db.multirow: every row inserted once, in order, in a few statements of fixed sizes (so the
sqlite3 module's statement cache keeps them compiled and each takes the GIL back once)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hub.db.engine import make_engine
from hub.db.multirow import insert_rows
from hub.vault import KeyVault


class CountingCursor:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.statements: list[str] = []

    def execute(self, sql: str, params: list[Any]) -> None:
        self.statements.append(sql)
        self.conn.execute(sql, params)


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 17, 64, 65, 200, 1000])
def test_every_row_once_in_order_in_few_statements(n: int) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a INTEGER, b BLOB, c TEXT)")
    rows = [(i, bytes([i % 256]) * 3, f"r{i}") for i in range(n)]
    cursor = CountingCursor(conn)
    insert_rows(cursor, "t (a, b, c)", rows)
    assert conn.execute("SELECT a, b, c FROM t ORDER BY rowid").fetchall() == rows
    # powers of two from 256 down: one statement per set bit below 256, and nine texts at most
    assert len(cursor.statements) == n // 256 + bin(n % 256).count("1")
    assert len(set(cursor.statements)) <= 9
    if n == 200:  # 128 + 64 + 8
        assert len(cursor.statements) == 3


def test_connections_that_insert_many_rows_keep_temporary_files_in_memory(
    tmp_path: Path,
) -> None:
    """A multi-row insert may need a statement journal (page images, in the key store other
    entries' keys): it must never be an unlinked file in the system's temporary directory,
    out of reach of the key store's erasure. 2 is MEMORY."""
    vault = KeyVault(tmp_path / "keys.sqlite3")
    try:
        assert vault._conn.execute("PRAGMA temp_store").fetchone() == (2,)
    finally:
        vault.close()
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA temp_store").fetchone() == (2,)
    finally:
        engine.dispose()
