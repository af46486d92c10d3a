"""Admission buckets, held entries, release and reject at the storage level, on SQLite and
PostgreSQL (specs/hub-api.md 6.2-6.3): token arithmetic with an injected clock, atomic
charging under concurrency, addresses never stored, held keys kept by start-up reconciliation.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from crypto.commitment import LeafData, LeafKind, new_salt
from crypto.merkle import EMPTY_ROOT
from hub.admission import (
    Bucket,
    Decision,
    HeldQuotaError,
    Policy,
    address_prefix,
    address_tag,
    admit,
    case_tag,
    load_admission_key,
    purge_buckets,
)
from hub.db.engine import create_schema, make_engine
from hub.erasure import ORPHAN_GRACE_SECONDS, reconcile
from hub.keystore import HubKeys, load_keys
from hub.review import ReviewError, count_held, list_held, reject, release
from hub.sequencer import sign_tree_head
from hub.settings import Settings
from hub.storage import NewEntry, ReplayRecord, SqlStorage

KEY = b"k" * 32


@pytest.fixture
def parts(database_url: str, tmp_path: Path) -> Iterator[tuple[SqlStorage, Engine, HubKeys]]:
    keys = load_keys(tmp_path / "data", "test.example/log")
    engine = make_engine(database_url)
    create_schema(engine, sign_tree_head(keys, 0, EMPTY_ROOT))
    yield SqlStorage(engine), engine, keys
    engine.dispose()


def _policy(**changes: object) -> Policy:
    return Policy.from_settings(Settings().replace(**changes))


def _entries(n: int) -> list[NewEntry]:
    return [
        NewEntry(
            secrets.token_hex(16),
            LeafData.for_entry(LeafKind.ADDITION, secrets.token_bytes(40), new_salt()).encode(),
            b"sealed",
        )
        for _ in range(n)
    ]


def _submit(
    storage: SqlStorage,
    policy: Policy,
    now: float,
    n: int,
    *,
    case_id: str | None = None,
    host: str = "192.0.2.1",
    submitter: tuple[str, bytes, Bucket] | None = None,
) -> Decision | None:
    case_id = case_id or secrets.token_hex(8).upper()
    return storage.submit(
        case_id,
        secrets.token_bytes(32),
        _entries(n),
        secrets.token_bytes(48),
        ReplayRecord(b"d" * 32, 202, b"pending"),
        int(now) + 300,
        100_000,
        int(now),
        admit=admit(
            policy,
            now,
            address=None if submitter else address_tag(KEY, host),
            submitter=submitter,
        ),
        held_record=ReplayRecord(b"d" * 32, 202, b"held"),
    )


def test_prefixes_group_ipv6_by_64_and_never_store_the_address(
    parts: tuple[SqlStorage, Engine, HubKeys],
) -> None:
    assert address_prefix("2001:db8:1:2::1") == address_prefix("2001:db8:1:2:ffff::9")
    assert address_prefix("2001:db8:1:2::1") != address_prefix("2001:db8:1:3::1")
    assert address_prefix("::ffff:192.0.2.7") == address_prefix("192.0.2.7")
    assert address_prefix("192.0.2.7") != address_prefix("192.0.2.8")
    assert address_prefix("not an address") == address_prefix("")
    assert address_tag(KEY, "192.0.2.7") != address_tag(b"j" * 32, "192.0.2.7")

    storage, engine, _ = parts
    policy = _policy(anon_hashes_burst=10)
    _submit(storage, policy, 1000.0, 5, host="198.51.100.23")
    _submit(storage, policy, 1000.0, 50, host="198.51.100.23")  # held
    with engine.connect() as conn:
        for table in ("admission_buckets", "held_submissions", "held_entries", "cases"):
            for row in conn.execute(text(f"SELECT * FROM {table}")).all():
                dump = repr(tuple(row)).encode()
                assert b"198.51.100.23" not in dump
                assert bytes([198, 51, 100, 23]) not in dump


def test_buckets_count_hashes_and_new_cases_and_refill(
    parts: tuple[SqlStorage, Engine, HubKeys],
) -> None:
    storage, _, _ = parts
    policy = _policy()
    t = 10_000.0
    case = "CASEAAAAAAAAAAAA"
    for n in (300, 300, 300):  # a person with 900 photos: one case, a few requests
        decision = _submit(storage, policy, t, n, case_id=case)
        assert decision is not None and not decision.held
    decision = _submit(storage, policy, t, 101, case_id=case)
    assert decision is not None and (decision.held, decision.reason) == (True, "address_hashes")
    # 1000/h: after 6 minutes 100 more hashes fit (and 99 were left).
    decision = _submit(storage, policy, t + 360, 199, case_id=case)
    assert decision is not None and not decision.held
    # New cases: five a day (another address), then held with reason address_cases; one
    # more a fifth of a day later.
    host = "192.0.2.77"
    answers = [_submit(storage, policy, t, 1, host=host) for _ in range(7)]
    assert [a.held for a in answers if a] == [False] * 5 + [True] * 2
    assert answers[-1] is not None and answers[-1].reason == "address_cases"
    later = _submit(storage, policy, t + 86400 / 5 + 1, 1, host=host)
    assert later is not None and not later.held
    # Another address has its own buckets.
    other = _submit(storage, policy, t, 900, host="192.0.2.99")
    assert other is not None and not other.held


def test_global_spike_is_held_and_trusted_submitters_bypass_it(
    parts: tuple[SqlStorage, Engine, HubKeys],
) -> None:
    storage, _, _ = parts
    policy = _policy(global_hashes_burst=2000, global_cases_burst=1000)
    t = 50_000.0
    held = [_submit(storage, policy, t, 900, host=f"192.0.2.{i}") for i in range(4)]
    assert [d.held if d else None for d in held] == [False, False, True, True]
    assert held[2] is not None and held[2].reason == "global_hashes"
    helpline = ("helpline", b"s" * 32, policy.submitter_default)
    for _ in range(5):
        decision = _submit(storage, policy, t, 1000, submitter=helpline)
        assert decision is not None and not decision.held and decision.submitter == "helpline"


def test_review_allowance_and_queue_are_bounded(
    parts: tuple[SqlStorage, Engine, HubKeys],
) -> None:
    storage, _, _ = parts
    policy = _policy(anon_hashes_burst=1, held_hashes_burst=100, held_max_entries=150)
    assert _submit(storage, policy, 1.0, 60) is not None
    with pytest.raises(HeldQuotaError) as caught:
        _submit(storage, policy, 1.0, 60)
    assert caught.value.retry_after >= 1
    # Another address: its own review allowance, but the hub-wide queue (150) is the bound.
    assert _submit(storage, policy, 1.0, 80, host="192.0.2.50") is not None
    with pytest.raises(HeldQuotaError):
        _submit(storage, policy, 1.0, 80, host="192.0.2.51")
    assert count_held(storage.engine) == (2, 140)


def test_concurrent_requests_never_spend_the_same_tokens(
    parts: tuple[SqlStorage, Engine, HubKeys],
) -> None:
    storage, _, _ = parts
    policy = _policy(anon_cases_burst=1000)
    results: list[bool] = []
    lock = threading.Lock()

    def one() -> None:
        d = _submit(storage, policy, 7_000.0, 100)
        with lock:
            results.append(bool(d and d.held))

    threads = [threading.Thread(target=one) for _ in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results) == [False] * 10 + [True] * 10


def test_release_moves_entries_and_reject_erases_their_keys(
    parts: tuple[SqlStorage, Engine, HubKeys], tmp_path: Path
) -> None:
    storage, engine, keys = parts
    policy = _policy(anon_hashes_burst=5)
    case = "CASEBBBBBBBBBBBB"
    _submit(storage, policy, 100.0, 5, case_id=case)
    _submit(storage, policy, 101.0, 7, case_id=case)
    _submit(storage, policy, 102.0, 3, case_id=case)
    held = storage.held_entries(case)
    assert [h.state for h in held] == ["held"] * 10
    keys.vault.put_entry_keys([(h.entry_id, secrets.token_bytes(32)) for h in held])

    # Reconciliation long after must keep the keys of entries still held.
    reconcile(engine, keys.vault, now=10**10)
    assert len(keys.vault.entry_keys([h.entry_id for h in held])) == 10

    admission_key = load_admission_key(tmp_path / "data")
    items = list_held(engine, admission_key)
    assert [i.entries for i in items] == [7, 3]
    assert {i.case for i in items} == {case_tag(admission_key, case)}
    assert case not in repr(items)
    assert storage.count_pending() == 5

    assert release(engine, items[0].review_id, 200) == 7
    assert storage.count_pending() == 12
    with pytest.raises(ReviewError):
        release(engine, items[0].review_id, 200)

    rejected_ids = [h.entry_id for h in storage.held_entries(case)]
    assert reject(engine, keys.vault, items[1].review_id, 300) == 3
    assert keys.vault.entry_keys(rejected_ids) == {}
    assert [h.state for h in storage.held_entries(case)] == ["rejected"] * 3
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT leaf_data, ciphertext FROM held_entries")).all()
    assert all(r[0] is None and r[1] is None for r in rows)
    assert storage.count_pending() == 12
    assert [i.state for i in list_held(engine, admission_key, every=True)] == [
        "released",
        "rejected",
    ]
    assert ORPHAN_GRACE_SECONDS < 10**10


def test_expired_buckets_are_purged(parts: tuple[SqlStorage, Engine, HubKeys]) -> None:
    storage, engine, _ = parts
    policy = _policy()
    _submit(storage, policy, 1_000.0, 10)
    from hub.db.models import AdmissionBucketRow, table_of

    buckets = table_of(AdmissionBucketRow)
    with engine.connect() as conn:
        expires = [int(r[0]) for r in conn.execute(select(buckets.c.expires_at)).all()]
    assert len(expires) == 2 and min(expires) >= 1_000 + policy.retention
    assert purge_buckets(engine, 1_000 + policy.retention - 10) == 0
    assert purge_buckets(engine, max(expires) + 1) == 2
