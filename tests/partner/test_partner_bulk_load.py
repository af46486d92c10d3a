"""Bulk load (issue 17, specs/partner-store.md 3): a sync far behind loads without the hash
index and builds it at the end; the result is the store a plain sync gives; a load killed
before the rebuild leaves a store that the next sync repairs; readers stay correct meanwhile."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from feedkit import FeedKit
from hubkit import Case, mixed_hashes, post, wait_for_size

import partner_sdk.store as store_module
import partner_sdk.sync as sync_module
from partner_sdk.batch import Addition
from partner_sdk.store import Store, TrustedCheckpoint


def has_index(path: Path) -> bool:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'ix_entries_hash'"
        ).fetchone()
    finally:
        conn.close()
    return row is not None


def dump(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM entries ORDER BY log_index").fetchall()
    finally:
        conn.close()


def test_bulk_sync_equals_a_plain_sync_and_ends_with_the_index(
    kit: FeedKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = kit.new_partner("alpha"), kit.new_partner("beta"), kit.new_partner("gamma")
    with kit.hub.client() as client:
        r = post(client, "/v1/submissions", Case().submission(mixed_hashes(20)))
        assert r.status_code == 202, r.text
        wait_for_size(client, 20)
    kit.wait_sealed(20)
    with kit.partner(a) as p:  # 20 entries: below the threshold, a plain sync
        assert not p.store.wants_bulk_load(20)
        assert p.sync().cursor == 20
    monkeypatch.setattr(store_module, "BULK_MIN_ENTRIES", 1)
    dropped: list[bool] = []
    with kit.partner(b) as p:
        assert p.store.wants_bulk_load(20)
        real = p.store.apply_batch

        def spy(*args: object, **kw: object) -> object:
            dropped.append(not has_index(p.store.path))
            return real(*args, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(p.store, "apply_batch", spy)
        assert p.sync().cursor == 20
    assert dropped and all(dropped)  # every batch went in without the index
    # A large sync prepares its batches in worker processes: the same store again.
    monkeypatch.setattr(sync_module, "PARALLEL_MIN_ENTRIES", 1)
    monkeypatch.setattr(sync_module, "_worker_count", lambda: 2)
    with kit.partner(c) as p:
        assert p.sync().cursor == 20
    for d in (a, b, c):
        assert has_index(d / "store.sqlite3")
    assert dump(a / "store.sqlite3") == dump(b / "store.sqlite3") == dump(c / "store.sqlite3")


def test_a_killed_bulk_load_is_repaired_by_the_next_sync_and_reads_stay_correct(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.sqlite3"
    store = Store(path)
    cp = TrustedCheckpoint(b"note", 3, bytes(32))
    store.defer_hash_index()
    store.apply_batch(
        0,
        3,
        [(i, Addition("md5", bytes([i]) * 16, None)) for i in range(3)],
        cp,
        0,
    )
    store.conn.close()  # "killed" before build_hash_index
    assert not has_index(path)
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    row = reader.execute(
        "SELECT log_index FROM entries WHERE algorithm = 'md5' AND hash = ?", (bytes([1]) * 16,)
    ).fetchone()
    reader.close()
    assert row == (1,)  # a table scan finds it
    again = Store(path)  # opening alone does not build it (a reader must not write)
    assert not has_index(path)
    assert not again.wants_bulk_load(10)  # what a sync checks first; then it builds:
    again.build_hash_index()
    again.close()
    assert has_index(path)
