"""hub.db.multirow: every row inserted once, in order, in a few statements of fixed sizes (so the
sqlite3 module's statement cache keeps them compiled and each takes the GIL back once)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from hub.db.multirow import insert_rows


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
    # greedy 64/16/4/1: at most n // 64 + 3 + 3 + 3 statements, and only four texts
    assert len(cursor.statements) <= n // 64 + 9
    assert len(set(cursor.statements)) <= 4
    if n == 200:  # 3 x 64 + 2 x 4
        assert len(cursor.statements) == 5
