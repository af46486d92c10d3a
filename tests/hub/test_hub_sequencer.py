"""Storage layer and sequencer crash points (no HTTP): a failure-injecting wrapper around the
storage and the tile store, a table of failure points, and after each a full invariant check
of the log (tiles rebuild the signed root, every sequenced entry has exactly one index)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crypto.checkpoint import open_checkpoint
from crypto.commitment import LeafData, LeafKind, new_salt
from crypto.merkle import (
    NodeId,
    consistency_proof,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
)
from crypto.tiles import TileHashReader, decode_entry_bundle, entry_bundles_for_size, tiles_for_size
from crypto.tree_state import TreeState
from hub.db.engine import create_schema, make_engine
from hub.keystore import HubKeys, load_keys
from hub.sequencer import Sequencer, sign_tree_head
from hub.storage import (
    ENTRIES,
    CaseFullError,
    CaseWithdrawnError,
    ConflictError,
    NewEntry,
    ReplayExistsError,
    ReplayRecord,
    SqlStorage,
    UnknownEntryError,
    WithdrawResult,
)
from hub.tilestore import FileTileStore


class Crash(Exception):
    """The injected failure (stands for a process dying at that point)."""


class Faulty:
    """Wraps an object; raises Crash before or after the n-th call of one method."""

    def __init__(self, inner: Any, method: str, when: str, nth: int) -> None:
        self._inner = inner
        self._method = method
        self._when = when
        self._nth = nth
        self._calls = 0
        self.fired = False

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if name != self._method:
            return target

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self._calls += 1
            hit = self._calls == self._nth and not self.fired
            if hit and self._when == "before":
                self.fired = True
                raise Crash(f"before {name} #{self._nth}")
            result = target(*args, **kwargs)
            if hit and self._when == "after":
                self.fired = True
                raise Crash(f"after {name} #{self._nth}")
            return result

        return wrapped


def _open_log_parts(
    database_url: str, tmp_path: Path
) -> Iterator[tuple[SqlStorage, FileTileStore, HubKeys]]:
    keys = load_keys(tmp_path / "data", "test.example/log")
    engine = make_engine(database_url)
    from crypto.merkle import EMPTY_ROOT

    create_schema(engine, sign_tree_head(keys, 0, EMPTY_ROOT))
    yield SqlStorage(engine), FileTileStore(tmp_path / "data" / "tiles"), keys
    engine.dispose()


@pytest.fixture
def log_parts(
    database_url: str, tmp_path: Path
) -> Iterator[tuple[SqlStorage, FileTileStore, HubKeys]]:
    yield from _open_log_parts(database_url, tmp_path)


@pytest.fixture
def sqlite_log_parts(tmp_path: Path) -> Iterator[tuple[SqlStorage, FileTileStore, HubKeys]]:
    """For what only SQLite has (its file write lock)."""
    yield from _open_log_parts(f"sqlite:///{tmp_path / 'hub.sqlite3'}", tmp_path)


def _add(storage: SqlStorage, case_id: str, n: int, now: int = 1000) -> list[str]:
    ids = [secrets.token_hex(16) for _ in range(n)]
    entries = [
        NewEntry(
            eid,
            LeafData.for_entry(LeafKind.ADDITION, secrets.token_bytes(40), new_salt()).encode(),
            b"sealed",
        )
        for eid in ids
    ]
    storage.submit(
        case_id,
        secrets.token_bytes(32),
        entries,
        secrets.token_bytes(48),
        ReplayRecord(b"d" * 32, 202, b"{}"),
        now + 300,
        100_000,
        now,
    )
    return ids


def _withdraw(storage: SqlStorage, case_id: str, ids: list[str] | None) -> WithdrawResult:
    seen: list[WithdrawResult] = []

    def respond(result: WithdrawResult) -> ReplayRecord:
        seen.append(result)
        return ReplayRecord(b"w" * 32, 202, b"{}")

    storage.withdraw(
        case_id, ids, lambda: secrets.token_hex(16), respond, secrets.token_bytes(48), 2000, 1000
    )
    return seen[0]


def check_log(storage: SqlStorage, tiles: FileTileStore, keys: HubKeys) -> list[bytes]:
    """Every invariant of a published log; returns its leaf data in index order."""
    state = storage.load_log_state()
    assert state.published_size <= state.size
    cp = open_checkpoint(state.checkpoint, [keys.verifier], origin=keys.origin).checkpoint
    assert cp.size == state.published_size
    assert cp.root_hash == state.published_state.root()
    leaves: list[bytes] = []
    for bundle in entry_bundles_for_size(cp.size):
        leaves.extend(decode_entry_bundle(tiles.read(bundle), bundle.width))
    assert len(leaves) == cp.size
    hashes = [leaf_hash(x) for x in leaves]
    assert root_from_leaf_hashes(hashes) == cp.root_hash
    reader = TileHashReader(cp.size, cp.root_hash, tiles.read)
    for tile in tiles_for_size(cp.size):
        if tile.is_full:
            reader.read_hashes([NodeId(8 * tile.level + 7, 2 * tile.index)])
    assert storage.leaf_data_range(0, cp.size) == leaves
    with storage.engine.connect() as conn:
        indexes = [
            r[0]
            for r in conn.execute(
                select(ENTRIES.c.log_index)
                .where(ENTRIES.c.log_index.is_not(None))
                .order_by(ENTRIES.c.log_index)
            )
        ]
    assert indexes == list(range(state.size))  # each sequenced entry exactly once, no gaps
    return leaves


FAILURE_POINTS = [
    ("storage", "load_log_state", "before", 1),
    ("storage", "sequence_batch", "before", 1),
    ("storage", "sequence_batch", "after", 1),
    ("storage", "leaf_data_range", "before", 1),
    ("tiles", "write_many", "before", 1),  # the round's tiles and bundles, one batch
    ("tiles", "write_many", "after", 1),
    ("tiles", "write", "before", 1),  # the checkpoint file
    ("tiles", "write", "after", 1),
    ("storage", "publish", "before", 1),
    ("storage", "publish", "after", 1),
    ("tiles", "read", "before", 1),
]


@pytest.mark.parametrize(
    "where,method,when,nth",
    FAILURE_POINTS,
    ids=[f"{w}.{m}/{when}{n}" for w, m, when, n in FAILURE_POINTS],
)
def test_crash_points(
    log_parts: tuple[SqlStorage, FileTileStore, HubKeys],
    where: str,
    method: str,
    when: str,
    nth: int,
) -> None:
    storage, tiles, keys = log_parts
    clean = Sequencer(storage, tiles, keys)
    first = _add(storage, "CASEAAAAAAAAAAAA", 250)
    assert clean.step(10_000) == 250
    before = check_log(storage, tiles, keys)
    old_root = storage.load_log_state().published_state.root()

    _add(storage, "CASEBBBBBBBBBBBB", 20)  # crosses the first 256-entry tile
    _withdraw(storage, "CASEAAAAAAAAAAAA", first[:3])
    faulty_storage = Faulty(storage, method, when, nth) if where == "storage" else storage
    faulty_tiles = Faulty(tiles, method, when, nth) if where == "tiles" else tiles
    with pytest.raises(Crash):
        Sequencer(faulty_storage, faulty_tiles, keys).step(10_000)
    # Whatever was published before the crash still verifies.
    mid = check_log(storage, tiles, keys)
    assert mid[:250] == before

    restarted = Sequencer(storage, tiles, keys)
    restarted.recover()
    while restarted.step(10_000):
        pass
    after = check_log(storage, tiles, keys)
    assert len(after) == 273 and after[:250] == before
    assert storage.count_pending() == 0
    # the round's 23 entries are in a random order (test_hub_shuffle.py): 3 tombstones among them
    assert sum(LeafData.decode(x).kind == LeafKind.TOMBSTONE for x in after[250:]) == 3
    new_root = storage.load_log_state().published_state.root()
    reader = TileHashReader(273, new_root, tiles.read)
    verify_consistency(250, 273, consistency_proof(250, 273, reader), old_root, new_root)


def test_tombstone_for_pending_entry_is_sequenced_after_it(
    log_parts: tuple[SqlStorage, FileTileStore, HubKeys],
) -> None:
    storage, tiles, keys = log_parts
    ids = _add(storage, "CASECCCCCCCCCCCC", 5)
    result = _withdraw(storage, "CASECCCCCCCCCCCC", None)
    assert result.case_withdrawn and [t for t, _ in result.withdrawn] == ids
    seq = Sequencer(storage, tiles, keys)
    assert seq.step(3) == 3  # the batch boundary falls between additions and tombstones
    assert seq.step(100) == 7
    leaves = check_log(storage, tiles, keys)
    # a random order within each round, but every tombstone after the addition it withdraws
    kinds = [LeafData.decode(x).kind for x in leaves]
    assert kinds[:3] == [LeafKind.ADDITION] * 3 and kinds.count(LeafKind.TOMBSTONE) == 5
    entries = storage.case_entries("CASECCCCCCCCCCCC")
    index_of = {e.entry_id: e.log_index for e in entries}
    for e in entries:
        if e.kind == LeafKind.TOMBSTONE:
            target, own = index_of[str(e.withdraws)], e.log_index
            assert target is not None and own is not None and target < own
    info = storage.get_case("CASECCCCCCCCCCCC")
    assert info is not None and info.withdrawn
    assert all(
        e.ciphertext is None
        for e in storage.case_entries("CASECCCCCCCCCCCC")
        if e.kind == LeafKind.ADDITION
    )
    with pytest.raises(CaseWithdrawnError):
        _add(storage, "CASECCCCCCCCCCCC", 1)


def test_two_sequencers_one_tree(log_parts: tuple[SqlStorage, FileTileStore, HubKeys]) -> None:
    storage, tiles, keys = log_parts
    a, b = Sequencer(storage, tiles, keys), Sequencer(storage, tiles, keys)
    for round_ in range(6):
        _add(storage, "CASEDDDDDDDDDDDD", 50)
        first, second = (a, b) if round_ % 2 else (b, a)
        storage.sequence_batch(20, first._make_tombstone)  # first dies before publishing
        with pytest.raises(ConflictError):
            storage.sequence_batch(20, second._make_tombstone)
        second.step(1000)  # the other one finishes the round and goes on
        check_log(storage, tiles, keys)
    assert storage.load_log_state().published_size == 300


def test_storage_refusals(log_parts: tuple[SqlStorage, FileTileStore, HubKeys]) -> None:
    storage, _tiles, _keys = log_parts
    key = secrets.token_bytes(48)
    record = ReplayRecord(b"x" * 32, 202, b"{}")
    storage.submit("CASEEEEEEEEEEEEE", b"k" * 32, [], key, record, 5, 10, 1)
    with pytest.raises(ReplayExistsError) as info:
        storage.submit("CASEEEEEEEEEEEEE", b"k" * 32, [], key, record, 5, 10, 1)
    assert info.value.record == record
    with pytest.raises(CaseFullError):
        _add_n = [NewEntry(secrets.token_hex(16), b"\x01\x01" + b"\x00" * 32, b"")] * 11
        storage.submit("CASEEEEEEEEEEEEE", b"k" * 32, _add_n, b"n" * 48, record, 5, 10, 1)
    with pytest.raises(UnknownEntryError):
        _withdraw(storage, "CASEEEEEEEEEEEEE", ["0" * 32])
    assert storage.get_replay(b"n" * 48) is None  # the refused submit stored nothing
    assert storage.purge_replays(6) == 1
    assert storage.get_replay(key) is None
    state = storage.load_log_state()
    assert state.size == 0 and state.state == TreeState.empty()


def test_restore_tiles_rebuilds_lost_tiles_byte_for_byte_and_refuses_a_mismatch(
    log_parts: tuple[SqlStorage, FileTileStore, HubKeys],
) -> None:
    import shutil

    from crypto.errors import InconsistentTreeError

    storage, tiles, keys = log_parts
    seq = Sequencer(storage, tiles, keys)
    for c in "abcd":  # more than one rebuild chunk (65,536 entries), in parameter-sized parts
        _add(storage, c * 16, 16_459)
    seq.step(100_000)
    assert not seq.restore_tiles()  # all there: nothing to do
    files = {
        p.relative_to(tiles.root): p.read_bytes() for p in tiles.root.rglob("*") if p.is_file()
    }
    shutil.rmtree(tiles.root)
    assert seq.restore_tiles()
    rebuilt = {
        p.relative_to(tiles.root): p.read_bytes() for p in tiles.root.rglob("*") if p.is_file()
    }
    assert rebuilt == files
    # The database no longer matches the signed checkpoint: no tile is written, start refused.
    shutil.rmtree(tiles.root)
    with storage.engine.begin() as conn:
        conn.execute(
            ENTRIES.update()
            .where(ENTRIES.c.log_index == 5)
            .values(leaf_data=LeafData.for_entry(LeafKind.ADDITION, b"x" * 40, new_salt()).encode())
        )
    with pytest.raises(InconsistentTreeError):
        seq.restore_tiles()
    assert not tiles.root.exists()


def test_a_missing_or_wrong_stored_leaf_hash_is_written_by_the_round(
    log_parts: tuple[SqlStorage, FileTileStore, HubKeys],
) -> None:
    """The round writes only log indexes for additions whose stored leaf hash is right (the
    intake stores it); a missing or wrong one is replaced, so proofs by leaf hash find it."""
    storage, tiles, keys = log_parts
    ids = _add(storage, "CASEHHHHHHHHHHHH", 6)
    with storage.engine.begin() as conn:
        conn.execute(ENTRIES.update().where(ENTRIES.c.entry_id == ids[0]).values(leaf_hash=None))
        conn.execute(
            ENTRIES.update().where(ENTRIES.c.entry_id == ids[1]).values(leaf_hash=b"\x01" * 32)
        )
    assert Sequencer(storage, tiles, keys).step(100) == 6
    leaves = check_log(storage, tiles, keys)
    for index, leaf in enumerate(leaves):
        assert storage.log_index_of_leaf(leaf_hash(leaf), len(leaves)) == index


def test_a_round_raced_between_its_read_and_its_write_stores_nothing(
    log_parts: tuple[SqlStorage, FileTileStore, HubKeys],
) -> None:
    """The round is read and computed before the write lock is taken (a tombstone body is
    built in between): if another sequencer sequenced meanwhile, the compare-and-swap
    refuses the stale round and the log stays whole."""
    storage, tiles, keys = log_parts
    ids = _add(storage, "CASERRRRRRRRRRRR", 4)
    first, other = Sequencer(storage, tiles, keys), Sequencer(storage, tiles, keys)
    assert first.step(100) == 4
    _withdraw(storage, "CASERRRRRRRRRRRR", ids[:1])  # a pending tombstone for the next round
    _add(storage, "CASESSSSSSSSSSSS", 3)

    def racing_tombstone(case_id: str, entry_id: str, withdrawn: int) -> tuple[bytes, bytes]:
        assert other.step(100) == 4  # another sequencer takes the whole round meanwhile
        return first._make_tombstone(case_id, entry_id, withdrawn)

    with pytest.raises(ConflictError):
        storage.sequence_batch(100, racing_tombstone)
    assert storage.load_log_state().published_size == 8
    check_log(storage, tiles, keys)


def test_sqlite_round_waits_for_a_held_write_lock(
    sqlite_log_parts: tuple[SqlStorage, FileTileStore, HubKeys],
) -> None:
    """SQLite: the round asks for the write lock in short polls while another writer holds
    it, then proceeds; the connection's busy timeout is restored for its next user."""
    import sqlite3
    import threading
    import time

    storage, tiles, keys = sqlite_log_parts
    _add(storage, "CASELLLLLLLLLLLL", 5)
    path = storage.engine.url.database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    timer.start()
    began = time.monotonic()
    try:
        assert Sequencer(storage, tiles, keys).step(100) == 5
    finally:
        timer.join()
        holder.close()
    assert time.monotonic() - began >= 0.25
    check_log(storage, tiles, keys)
    with storage.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        assert raw.execute("PRAGMA busy_timeout").fetchone() == (60_000,)
