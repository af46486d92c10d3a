"""The leaf-hash index holds sequenced entries only (specs/hub-storage.md section 2), on SQLite
and PostgreSQL: a proof by leaf hash is still answered through it, never by a scan of every
entry (at 10 million entries that scan would be anyone's denial of service), and a database
made with the older index of every entry gets the new one at start."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hubkit import hub_database
from sqlalchemy import Engine, event, text

from crypto.commitment import LeafData, LeafKind, new_salt
from crypto.merkle import EMPTY_ROOT, leaf_hash
from hub.db.engine import create_schema, is_postgres
from hub.keystore import HubKeys
from hub.sequencer import Sequencer, sign_tree_head
from hub.storage import NewEntry, ReplayRecord, SqlStorage
from hub.tilestore import FileTileStore

INDEX = "ix_entries_logged_leaf"


@pytest.fixture
def parts(database_url: str, tmp_path: Path) -> Iterator[tuple[SqlStorage, Engine, HubKeys]]:
    with hub_database(database_url, tmp_path / "data") as (keys, engine, storage):
        yield storage, engine, keys


def _add(storage: SqlStorage, n: int) -> list[bytes]:
    leaves = [
        LeafData.for_entry(LeafKind.ADDITION, secrets.token_bytes(40), new_salt()).encode()
        for _ in range(n)
    ]
    storage.submit(
        secrets.token_hex(8).upper(),
        secrets.token_bytes(32),
        [NewEntry(secrets.token_hex(16), leaf, b"sealed") for leaf in leaves],
        secrets.token_bytes(48),
        ReplayRecord(b"d" * 32, 202, b"{}"),
        1300,
        100_000,
        1000,
    )
    return leaves


def _indexes(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        if is_postgres(engine):
            rows = conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename='entries'"))
        else:
            rows = conn.execute(
                text("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='entries'")
            )
        return {str(r[0]) for r in rows}


def test_proof_by_leaf_hash_uses_the_index_of_sequenced_entries(
    parts: tuple[SqlStorage, Engine, HubKeys], tmp_path: Path
) -> None:
    storage, engine, keys = parts
    logged = _add(storage, 5)
    Sequencer(storage, FileTileStore(tmp_path / "tiles"), keys).step(100)
    pending = _add(storage, 3)
    size = storage.load_log_state().size
    found = {storage.log_index_of_leaf(leaf_hash(leaf), size) for leaf in logged}
    assert None not in found and len(found) == 5
    assert storage.log_index_of_leaf(leaf_hash(pending[0]), size) is None

    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        storage.log_index_of_leaf(leaf_hash(logged[1]), size)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, params = next((s, p) for s, p in seen if "leaf_hash" in s)
    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        if is_postgres(engine):
            cursor.execute("SET enable_seqscan = off")  # a tiny table: ask whether it CAN
            cursor.execute("EXPLAIN " + statement, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + statement, params)
        plan = " ".join(str(row) for row in cursor.fetchall())
    assert INDEX in plan, plan


def test_a_database_with_the_older_index_gets_the_new_one(
    parts: tuple[SqlStorage, Engine, HubKeys],
) -> None:
    _storage, engine, keys = parts
    with engine.begin() as conn:
        conn.execute(text(f"DROP INDEX {INDEX}"))
        conn.execute(text("CREATE INDEX ix_entries_leaf_hash ON entries (leaf_hash)"))
    assert "ix_entries_leaf_hash" in _indexes(engine)
    create_schema(engine, sign_tree_head(keys, 0, EMPTY_ROOT))
    found = _indexes(engine)
    assert INDEX in found and "ix_entries_leaf_hash" not in found
