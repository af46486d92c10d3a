"""SQLite inserts of many rows in a few statements, for the intake's group commits.

Why not ``executemany``: Python's sqlite3 module releases and retakes the GIL around every
row's step, and each retake waits while another thread (the event loop) holds it, up to the
switch interval. A group of 200 entries then spent most of its commit waiting for the GIL.
A multi-row ``INSERT ... VALUES (...), (...)`` takes one step per statement. The statements
come in a few fixed sizes so that the module's statement cache keeps them compiled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["insert_rows"]

# Rows per statement, powers of two (at most nine statements up to 511 rows); 256 x 7 columns
# stays far below SQLite's 32,766 parameters.
_SIZES = (256, 128, 64, 32, 16, 8, 4, 2, 1)


def insert_rows(cursor: Any, into: str, rows: Sequence[tuple[object, ...]]) -> None:
    """``INSERT INTO <into> VALUES`` every row of ``rows`` (a DB-API cursor or sqlite3
    connection; ``into`` a table and column list, a constant of the caller, never input)."""
    if not rows:
        return
    one = "(" + ",".join("?" * len(rows[0])) + ")"
    at = 0
    for size in _SIZES:
        if len(rows) - at < size:
            continue
        statement = f"INSERT INTO {into} VALUES " + ",".join([one] * size)  # noqa: S608
        while len(rows) - at >= size:
            cursor.execute(statement, [value for row in rows[at : at + size] for value in row])
            at += size
