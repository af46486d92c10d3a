"""The worker processes of a large sync (partner_sdk/syncworker.py): they compute exactly what
the sync computes in process, hand back the same typed errors, and a worker that dies only
moves its work back into the syncing process."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import partner_sdk.batch as batch_module
import partner_sdk.store as store_module
import partner_sdk.sync as sync_module
from crypto.commitment import LeafData, LeafKind
from crypto.merkle import leaf_hash, range_nodes, root_from_leaf_hashes
from partner_sdk.batch import (
    CODE_MD5,
    CODE_SHA256,
    Addition,
    Prepared,
    Record,
    Tombstone,
    pack_additions,
    plan_batch,
    prepare_batch,
    unpack_additions,
)
from partner_sdk.errors import MalformedBatchError, RedactionError
from partner_sdk.store import Store, TrustedCheckpoint
from partner_sdk.syncworker import WorkerPool


def body(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def batch(start: int, bodies: list[tuple[int, bytes]]) -> tuple[bytes, list[bytes]]:
    """A batch plaintext (specs/feed.md 3) for [start, start + len) and its leaf hashes."""
    end = start + len(bodies)
    parts = [b"NCFP", bytes((1,)), struct.pack(">QQI", start, end, len(bodies))]
    leaves = []
    for kind, raw in bodies:
        salt = os.urandom(32)
        parts += [struct.pack(">BB", 1, kind), salt, struct.pack(">I", len(raw)), raw]
        leaves.append(leaf_hash(LeafData.for_entry(LeafKind(kind), raw, salt).encode()))
    return b"".join(parts), leaves


def entries(n: int, start: int) -> list[tuple[int, bytes]]:
    out = []
    for i in range(n):
        h = [
            {"algorithm": "pdq", "hash": os.urandom(32).hex(), "quality": 90},
            {"algorithm": "md5", "hash": os.urandom(16).hex()},
            {"algorithm": "sha256", "hash": os.urandom(32).hex()},
        ][i % 3]
        out.append((1, body({"hash": h, "kind": "addition", "v": 1})))
    # the last entry withdraws the first: resolved inside the batch
    out[-1] = (2, body({"kind": "tombstone", "v": 1, "withdraws": start}))
    return out


def unpacked(prepared: Prepared) -> Prepared:
    """``prepared`` with its live additions as tuples (a worker hands them back packed)."""
    plan = replace(prepared.plan, additions=unpack_additions(prepared.plan), packed=[])
    return Prepared(prepared.roots, plan)


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    p = WorkerPool(2)
    yield p
    p.close()


def test_a_worker_computes_what_the_sync_computes_in_process(pool: WorkerPool) -> None:
    start = 4096 + 100  # an unaligned range: several subtree roots
    plaintext, leaves = batch(start, entries(700, start))
    here = prepare_batch(plaintext, start, start + 700, start + 5, 10_000)
    there = pool.prepare(plaintext, start, start + 700, start + 5, 10_000)
    # The worker hands its live additions back packed (pack_additions).
    assert there.plan.additions == [] and there.plan.packed != []
    assert unpack_additions(there.plan) == here.plan.additions
    assert unpacked(there) == here
    expected, offset = [], 0
    for node in range_nodes(start, start + 700):
        width = 1 << node.level
        expected.append(root_from_leaf_hashes(leaves[offset : offset + width]))
        offset += width
    assert there.roots == expected
    assert len(unpack_additions(there.plan)) + len(there.plan.rows) == 695


def test_packed_additions_store_the_same_rows(tmp_path: Path) -> None:
    start = 4096
    plaintext, _ = batch(start, entries(300, start))
    stores = []
    for packed in (False, True):
        plan = prepare_batch(plaintext, start, start + 300, start, 10_000).plan
        if packed:
            pack_additions(plan)
            assert plan.additions == [] and plan.packed != []
        store = Store(tmp_path / f"packed{packed}.sqlite3")
        store.conn.execute("UPDATE sync_state SET cursor = ? WHERE id = 1", (start,))
        cp = TrustedCheckpoint(b"note", 10_000, bytes(32))
        counts = store.apply_batch(start, start + 300, plan, cp, 0)
        assert counts.additions == 299 and counts.withdrawn == 1
        stores.append(store.conn.execute("SELECT * FROM entries ORDER BY log_index").fetchall())
        store.close()
    assert stores[0] == stores[1]
    assert len(stores[1]) == 300


def test_plan_resolves_a_withdrawal_inside_the_batch() -> None:
    records: list[Record] = [(10, Addition("md5", bytes(16), None)), (11, Tombstone(10))]
    plan = plan_batch(records, 12)
    assert plan.additions == []
    assert plan.rows == [
        (11, 2, None, None, None, 0, None, 10, 0),
        (10, 1, "md5", None, None, 1, 11, None, 0),
    ]
    assert plan.counts.withdrawn == 1
    with pytest.raises(RedactionError):
        plan_batch([(10, Tombstone(10))], 12)


def test_errors_come_back_typed(pool: WorkerPool) -> None:
    plaintext, _ = batch(0, entries(10, 0))
    with pytest.raises(MalformedBatchError):
        pool.prepare(plaintext + b"\x00", 0, 10, 0, 10)  # a byte after the last record
    with pytest.raises(MalformedBatchError):
        pool.prepare(plaintext, 0, 11, 0, 11)  # header does not match the listed range
    assert unpacked(pool.prepare(plaintext, 0, 10, 0, 10)) == prepare_batch(plaintext, 0, 10, 0, 10)


def test_a_dead_worker_moves_the_work_back() -> None:
    pool = WorkerPool(1)
    try:
        plaintext, _ = batch(0, entries(50, 0))
        pool._all[0].proc.kill()
        pool._all[0].proc.wait()
        assert unpacked(pool.prepare(plaintext, 0, 50, 0, 50)) == prepare_batch(
            plaintext, 0, 50, 0, 50
        )
    finally:
        pool.close()


def test_the_spec_states_the_pipeline_limits() -> None:
    spec = (Path(__file__).resolve().parents[2] / "specs" / "partner-store.md").read_text()
    assert f"at least {sync_module.PARALLEL_MIN_ENTRIES:,} entries" in spec
    assert f"at most {sync_module.AHEAD_BYTES >> 20} MiB" in spec
    assert f"at most {sync_module.MAX_WORKERS};" in spec


def additions_only(n: int) -> list[tuple[int, bytes]]:
    """PDQ (qualities 0, 9, 100...), MD5 and SHA-256 additions: the whole-batch fast path."""
    out = []
    for i in range(n):
        h = [
            {"algorithm": "pdq", "hash": os.urandom(32).hex(), "quality": (0, 9, 55, 100)[i % 4]},
            {"algorithm": "md5", "hash": os.urandom(16).hex()},
            {"algorithm": "sha256", "hash": os.urandom(32).hex()},
        ][i % 3]
        out.append((1, body({"hash": h, "kind": "addition", "v": 1})))
    return out


def general(plaintext: bytes, start: int, end: int, apply_from: int) -> Prepared:
    """prepare_batch with the whole-batch fast path turned off (the record-by-record path)."""
    saved = batch_module._fast_batch
    batch_module._fast_batch = lambda *args: None  # type: ignore[assignment]
    try:
        return prepare_batch(plaintext, start, end, apply_from, 10_000)
    finally:
        batch_module._fast_batch = saved


def test_the_fast_path_computes_what_the_general_path_computes() -> None:
    start = 4096 + 100
    plaintext, leaves = batch(start, additions_only(500))
    for apply_from in (start, start + 1, start + 499):
        fast = prepare_batch(plaintext, start, start + 500, apply_from, 10_000)
        slow = general(plaintext, start, start + 500, apply_from)
        assert fast.plan.packed and not fast.plan.additions  # it took the fast path
        assert fast.roots == slow.roots
        assert unpack_additions(fast.plan) == slow.plan.additions
        assert fast.plan.counts == slow.plan.counts
    expected, offset = [], 0
    for node in range_nodes(start, start + 500):
        width = 1 << node.level
        expected.append(root_from_leaf_hashes(leaves[offset : offset + width]))
        offset += width
    assert prepare_batch(plaintext, start, start + 500, start, 10_000).roots == expected


def test_the_fast_path_leaves_anything_else_to_the_general_path() -> None:
    start = 64
    plaintext, _ = batch(start, additions_only(40))
    # A length field that does not match its body, a tombstone,
    # a hash one hex digit too long, bytes after the last record: each takes the general path,
    # which decides (here: refuses, or parses the tombstone) exactly as before.
    first_len = plaintext.index(b'{"hash"') - 4
    bad_len = bytearray(plaintext)
    bad_len[first_len + 3] ^= 1
    with pytest.raises(MalformedBatchError):
        prepare_batch(bytes(bad_len), start, start + 40, start, 10_000)
    with pytest.raises(MalformedBatchError):
        prepare_batch(plaintext + b"\x00", start, start + 40, start, 10_000)
    upper = plaintext.replace(b'"hash":"', b'"hash":"A', 1)
    with pytest.raises(MalformedBatchError):
        prepare_batch(upper, start, start + 40, start, 10_000)
    mixed = [*additions_only(39), (2, body({"kind": "tombstone", "v": 1, "withdraws": start}))]
    plaintext, _ = batch(start, mixed)
    here = prepare_batch(plaintext, start, start + 40, start, 10_000)
    assert here == general(plaintext, start, start + 40, start)
    assert here.plan.counts.withdrawn == 1


def test_packed_runs_store_the_same_rows(tmp_path: Path) -> None:
    start = 4096
    plaintext, _ = batch(start, additions_only(300))
    stores = []
    for mode in ("tuples", "packed", "no-json"):
        plan = general(plaintext, start, start + 300, start).plan
        if mode != "tuples":
            plan = prepare_batch(plaintext, start, start + 300, start, 10_000).plan
            assert plan.packed and not plan.additions
        store = Store(tmp_path / f"{mode}.sqlite3")
        store._json = mode != "no-json"
        store.conn.execute("UPDATE sync_state SET cursor = ? WHERE id = 1", (start,))
        cp = TrustedCheckpoint(b"note", 10_000, bytes(32))
        counts = store.apply_batch(start, start + 300, plan, cp, 0)
        assert counts.additions == 300
        stores.append(store.conn.execute("SELECT * FROM entries ORDER BY log_index").fetchall())
        store.close()
    assert stores[0] == stores[1] == stores[2]
    assert len(stores[0]) == 300
    assert {r[2] for r in stores[0]} == {"pdq", "md5", "sha256"}
    assert {len(r[3]) for r in stores[0] if r[2] == "md5"} == {16}


def test_the_insert_statement_spells_the_codes() -> None:
    assert f"WHEN {CODE_MD5} THEN 'md5'" in store_module._INSERT_PACKED
    assert f"WHEN {CODE_SHA256} THEN 'sha256'" in store_module._INSERT_PACKED
    assert f"key * {store_module._SLOT} + 1" in store_module._INSERT_PACKED
    assert f"WHEN {CODE_MD5} THEN 16 ELSE {store_module._SLOT}" in store_module._INSERT_PACKED
