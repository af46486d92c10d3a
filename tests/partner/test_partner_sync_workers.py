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

import partner_sdk.sync as sync_module
from crypto.commitment import LeafData, LeafKind
from crypto.merkle import leaf_hash, range_nodes, root_from_leaf_hashes
from partner_sdk.batch import (
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
    plan = replace(prepared.plan, additions=unpack_additions(prepared.plan), additions_image=None)
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
    # The worker hands its live additions back packed as a SQLite image (pack_additions).
    assert there.plan.additions == [] and there.plan.additions_image is not None
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
            assert plan.additions == [] and plan.additions_image is not None
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
