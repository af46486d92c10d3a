"""Secret-bearing partner files are the owner's alone (issue 12 finding 7): with the common
umask 022, the data folder is 0700 and the keys, the store (plaintext hashes) and its -wal and
-shm files are 0600; a store or folder created looser by an older SDK is tightened."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from feedkit import FeedKit
from hubkit import Case, mixed_hashes, post, wait_for_size

from partner_sdk import init_partner
from partner_sdk.store import Store


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_partner_files_are_private(kit: FeedKit, umask_022: None) -> None:
    a = kit.new_partner("alpha")
    os.chmod(a, 0o755)  # as an older SDK or a careless copy left it: sync tightens it
    with kit.hub.client() as client:
        assert (
            post(client, "/v1/submissions", Case().submission(mixed_hashes(6))).status_code == 202
        )
        wait_for_size(client, 6)
        kit.wait_sealed(6)
    with kit.partner(a) as p:
        assert p.sync().cursor == 6
        # While the store is open its WAL and shared-memory files exist: they hold hashes too.
        present = {f.name for f in a.iterdir()}
        assert {"store.sqlite3", "store.sqlite3-wal", "store.sqlite3-shm"} <= present
        modes = {f.name: mode(f) for f in a.iterdir()}
    assert mode(a) == 0o700
    for name in ("request.key", "feed.key", "store.sqlite3", "store.sqlite3-wal"):
        assert modes[name] == 0o600, (name, oct(modes[name]))
    assert modes["store.sqlite3-shm"] == 0o600
    assert all(m & 0o077 == 0 for n, m in modes.items() if n != "partner-public.json")


def test_a_loose_store_and_folder_are_tightened(tmp_path: Path, umask_022: None) -> None:
    directory = tmp_path / "old"
    init_partner(directory, "old")
    db = directory / "store.sqlite3"
    Store(db).close()
    os.chmod(db, 0o644)
    (directory / "store.sqlite3-wal").write_bytes(b"")
    os.chmod(directory / "store.sqlite3-wal", 0o644)
    store = Store(db)
    try:
        assert mode(db) == 0o600
        assert mode(directory / "store.sqlite3-wal") == 0o600
        assert mode(directory / "store.sqlite3-shm") == 0o600
    finally:
        store.close()


def test_new_store_is_created_private(tmp_path: Path, umask_022: None) -> None:
    db = tmp_path / "store.sqlite3"
    store = Store(db)
    try:
        store.conn.execute("UPDATE sync_state SET cursor = 0")
        for name in ("store.sqlite3", "store.sqlite3-wal", "store.sqlite3-shm"):
            assert mode(tmp_path / name) == 0o600, name
    finally:
        store.close()
