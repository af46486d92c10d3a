"""Many rows into a SQLite table in a few statements (the hot paths' inserts).

Why not ``executemany``: Python's sqlite3 module releases the GIL around every row's step and
takes it back after. With the hub's request threads busy, each take-back waits up to the
switch interval (1 ms under ``ncii-hub serve``), so a group commit of a hundred rows held the
database's write lock (or the key store's) for up to a hundred of them while every other
submission queued behind it. One ``INSERT ... VALUES (...), (...), ...`` per chunk releases
it once per chunk. Chunks are powers of two (at most :data:`MAX_ROWS` rows), so each table
sees a handful of distinct statement texts, all kept prepared by sqlite3's statement cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["MAX_ROWS", "chunk_sizes", "insert_rows"]

MAX_ROWS = 256
# SQLite's default limit of bound parameters before 3.32 (32,766 since): a chunk stays within
# it on any build, so wide rows get smaller chunks (7 columns: 128 rows).
_OLD_SQLITE_PARAMETERS = 999


def chunk_sizes(count: int, max_rows: int = MAX_ROWS) -> list[int]:
    """``count`` split into powers of two, largest first, none above ``max_rows``
    (itself a power of two): 300 -> [256, 32, 8, 4]."""
    sizes: list[int] = []
    while count >= max_rows:
        sizes.append(max_rows)
        count -= max_rows
    bit = max_rows >> 1
    while count:
        if count & bit:
            sizes.append(bit)
            count -= bit
        bit >>= 1
    return sizes


def insert_rows(cursor: Any, into: str, rows: Sequence[tuple[object, ...]]) -> None:
    """``INSERT INTO {into} VALUES`` every row of ``rows`` (all of one width), in as few
    statements as :func:`chunk_sizes` gives. ``into`` is a table and its column list, a
    constant of the caller's module, never input."""
    if not rows:
        return
    width = len(rows[0])
    max_rows = MAX_ROWS
    while max_rows * width > _OLD_SQLITE_PARAMETERS and max_rows > 1:
        max_rows >>= 1  # fits any SQLite build's parameter limit
    one = "(" + ",".join("?" * width) + ")"
    at = 0
    for size in chunk_sizes(len(rows), max_rows):
        part = rows[at : at + size]
        at += size
        cursor.execute(
            f"INSERT INTO {into} VALUES {','.join([one] * size)}",  # noqa: S608
            [value for row in part for value in row],
        )
