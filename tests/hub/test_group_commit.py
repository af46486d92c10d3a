"""Group commit of submissions (specs/hub-storage.md section 5.1), on SQLite and PostgreSQL:
requests queued together are stored in one transaction, yet each is decided as if alone, in
arrival order; a refusal (withdrawn case, full case, admission's hold limit, a replay) never
fails a group-mate; a group that cannot decide alone (another process stored a replay key or a
case meanwhile) is retried one request at a time with the same answers.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError

from crypto.commitment import LeafData, LeafKind, new_salt
from crypto.merkle import EMPTY_ROOT
from hub.admission import Decision, HeldQuotaError, Policy, address_tag, admit
from hub.db.engine import create_schema, make_engine
from hub.db.models import EntryRow, table_of
from hub.keystore import load_keys
from hub.sequencer import sign_tree_head
from hub.settings import Settings
from hub.storage import (
    _REPLAY_READ_MAX,
    CaseFullError,
    CaseWithdrawnError,
    NewEntry,
    ReplayExistsError,
    ReplayRecord,
    SqlStorage,
    StorageError,
)

ENTRIES = table_of(EntryRow)
MAX_PER_CASE = 12


@pytest.fixture
def parts(database_url: str, tmp_path: Path) -> Iterator[tuple[SqlStorage, Engine]]:
    keys = load_keys(tmp_path / "data", "test.example/log")
    engine = make_engine(database_url)
    create_schema(engine, sign_tree_head(keys, 0, EMPTY_ROOT))
    yield SqlStorage(engine), engine
    engine.dispose()


def _entries(n: int) -> list[NewEntry]:
    return [
        NewEntry(
            secrets.token_hex(16),
            LeafData.for_entry(LeafKind.ADDITION, secrets.token_bytes(40), new_salt()).encode(),
            b"sealed",
        )
        for _ in range(n)
    ]


class Request:
    """One submission's arguments and, once stored, its outcome."""

    def __init__(
        self,
        case_id: str,
        n: int,
        *,
        replay_key: bytes | None = None,
        digest: bytes | None = None,
        policy: Policy | None = None,
        host: str = "192.0.2.1",
    ) -> None:
        self.case_id = case_id
        self.entries = _entries(n)
        self.replay_key = replay_key or secrets.token_bytes(48)
        self.record = ReplayRecord(digest or secrets.token_bytes(32), 202, b"pending")
        self.held = ReplayRecord(self.record.envelope_sha256, 202, b"held")
        self.policy = policy
        self.host = host
        self.outcome: Decision | BaseException | None = None

    def run(self, storage: SqlStorage) -> None:
        admit_step = None
        if self.policy is not None:
            admit_step = admit(
                self.policy, 1000.0, address=address_tag(b"k" * 32, self.host), submitter=None
            )
        try:
            self.outcome = storage.submit(
                self.case_id,
                b"p" * 32,
                self.entries,
                self.replay_key,
                self.record,
                5000,
                MAX_PER_CASE,
                1000,
                admit=admit_step,
                held_record=self.held,
            )
        except Exception as exc:  # the test inspects it
            self.outcome = exc


def _as_one_group(storage: SqlStorage, requests: list[Request]) -> int:
    """Queue every request while a (pretend) group commits, then let them go: they are
    stored as one group, in queue order. Returns how many groups committed."""
    groups = 0
    real = storage._submit_group

    def counting(group: Any) -> Any:
        nonlocal groups
        groups += 1
        return real(group)

    storage._submit_group = counting  # type: ignore[method-assign]
    with storage._group_lock:
        storage._committing = True
    threads: list[threading.Thread] = []
    for r in requests:  # one at a time, so the queue holds them in this order
        t = threading.Thread(target=r.run, args=(storage,))
        t.start()
        threads.append(t)
        _wait_for(_queued(storage, len(threads)))
    storage._finish([])  # the pretend group is done: the oldest queued request leads
    for t in threads:
        t.join(30)
    return groups


def _queued(storage: SqlStorage, n: int) -> Callable[[], bool]:
    return lambda: len(storage._queue) == n


def _wait_for(condition: Callable[[], bool]) -> None:
    for _ in range(2000):
        if condition():
            return
        threading.Event().wait(0.005)
    raise AssertionError("condition not reached")


def _case_count(engine: Engine, case_id: str) -> int | None:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT entry_count FROM cases WHERE case_id = :c"), {"c": case_id}
        ).first()
    return None if row is None else int(row[0])


def _entries_of(engine: Engine, case_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(ENTRIES).where(ENTRIES.c.case_id == case_id)
            ).scalar_one()
        )


def test_one_group_decides_each_request_alone(parts: tuple[SqlStorage, Engine]) -> None:
    storage, engine = parts
    Request("WITHDRAWNCASE001", 1).run(storage)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE cases SET withdrawn = :t WHERE case_id = 'WITHDRAWNCASE001'"), {"t": True}
        )
    first = Request("AAAAAAAAAAAAAAAA", 5)
    same_case = Request("AAAAAAAAAAAAAAAA", 5)  # the case made by `first` in this group
    overflow = Request("AAAAAAAAAAAAAAAA", 5)  # 15 > 12: refused, alone
    retry = Request("BBBBBBBBBBBBBBBB", 3, replay_key=first.replay_key, digest=b"x" * 32)
    withdrawn = Request("WITHDRAWNCASE001", 2)
    fits = Request("AAAAAAAAAAAAAAAA", 2)  # 12: still fits after the refusal
    other = Request("CCCCCCCCCCCCCCCC", 4)
    group = [first, same_case, overflow, retry, withdrawn, fits, other]
    assert _as_one_group(storage, group) == 1

    assert first.outcome is None and same_case.outcome is None and fits.outcome is None
    assert other.outcome is None
    assert isinstance(overflow.outcome, CaseFullError)
    assert isinstance(withdrawn.outcome, CaseWithdrawnError)
    # The same replay key within one group: the earlier request's stored answer (here with
    # other bytes, which intake answers with 409).
    assert isinstance(retry.outcome, ReplayExistsError)
    assert retry.outcome.record == first.record
    assert _case_count(engine, "AAAAAAAAAAAAAAAA") == 12
    assert _entries_of(engine, "AAAAAAAAAAAAAAAA") == 12
    assert _case_count(engine, "BBBBBBBBBBBBBBBB") is None  # never created
    assert _case_count(engine, "CCCCCCCCCCCCCCCC") == 4
    assert _entries_of(engine, "WITHDRAWNCASE001") == 1
    assert storage.get_replay(first.replay_key) == first.record
    assert storage.get_replay(other.replay_key) == other.record
    assert storage.get_replay(overflow.replay_key) is None  # refused: no replay record


def test_admission_refusal_fails_only_its_request(parts: tuple[SqlStorage, Engine]) -> None:
    storage, engine = parts
    # 10 hashes of allowance, 4 of review allowance; 100 held entries at most hub-wide.
    policy = Policy.from_settings(
        Settings().replace(anon_hashes_burst=10, held_hashes_burst=4, held_max_entries=100)
    )
    ok = Request("DDDDDDDDDDDDDDDD", 8, policy=policy)
    held = Request("EEEEEEEEEEEEEEEE", 4, policy=policy)  # over 10: held (review allowance 4)
    refused = Request("FFFFFFFFFFFFFFFF", 3, policy=policy)  # no allowance left: 429
    fits = Request("GGGGGGGGGGGGGGGG", 2, policy=policy)  # the 2 left of the 10
    other_address = Request("HHHHHHHHHHHHHHHH", 5, policy=policy, host="198.51.100.9")
    assert _as_one_group(storage, [ok, held, refused, fits, other_address]) == 1

    assert isinstance(ok.outcome, Decision) and not ok.outcome.held
    assert isinstance(held.outcome, Decision) and held.outcome.held
    assert isinstance(refused.outcome, HeldQuotaError)
    assert isinstance(fits.outcome, Decision) and not fits.outcome.held
    assert isinstance(other_address.outcome, Decision) and not other_address.outcome.held
    assert _entries_of(engine, "DDDDDDDDDDDDDDDD") == 8
    assert _entries_of(engine, "EEEEEEEEEEEEEEEE") == 0  # held entries are not log entries
    assert _case_count(engine, "EEEEEEEEEEEEEEEE") == 4
    assert _case_count(engine, "FFFFFFFFFFFFFFFF") is None  # the refusal left nothing
    assert storage.get_replay(refused.replay_key) is None
    assert storage.get_replay(held.replay_key) == held.held
    with engine.connect() as conn:
        held_rows = conn.execute(text("SELECT count(*) FROM held_entries")).scalar_one()
        # the address's bucket: 8 + 2 charged; the refused request's 3 were not
        hashes = conn.execute(
            text("SELECT hashes FROM admission_buckets WHERE tag = :t"),
            {"t": address_tag(b"k" * 32, "192.0.2.1")},
        ).scalar_one()
    assert held_rows == 4
    assert hashes == pytest.approx(0.0, abs=0.01)


def test_a_race_with_another_process_falls_back_to_one_by_one(
    parts: tuple[SqlStorage, Engine],
) -> None:
    storage, engine = parts
    raced = Request("IIIIIIIIIIIIIIII", 2)
    mate = Request("JJJJJJJJJJJJJJJJ", 2)
    real = storage._submit_group
    theirs = ReplayRecord(raced.record.envelope_sha256, 202, b'{"entries":["theirs"]}')

    def other_process_first(group: Any) -> Any:
        # Another hub process stores the same replay key just after the group's read: the
        # same envelope sent to it too, answered with that request's own entry ids.
        other = SqlStorage(engine)
        other._submit_one(
            "KKKKKKKKKKKKKKKK",
            b"p" * 32,
            _entries(1),
            raced.replay_key,
            theirs,
            5000,
            MAX_PER_CASE,
            1000,
        )
        storage._submit_group = real  # type: ignore[method-assign]
        raise RuntimeError("the group lost a race (as an integrity error would say)")

    storage._submit_group = other_process_first  # type: ignore[method-assign]
    with storage._group_lock:
        storage._committing = True
    threads = []
    for r in (raced, mate):
        t = threading.Thread(target=r.run, args=(storage,))
        t.start()
        threads.append(t)
        _wait_for(_queued(storage, len(threads)))
    storage._finish([])  # the pretend group is done: the oldest queued request leads
    for t in threads:
        t.join(30)
    assert isinstance(raced.outcome, ReplayExistsError)
    assert raced.outcome.record == theirs
    assert mate.outcome is None
    assert _entries_of(engine, "JJJJJJJJJJJJJJJJ") == 2
    assert _case_count(engine, "IIIIIIIIIIIIIIII") is None


def test_many_threads_each_get_their_own_answer(parts: tuple[SqlStorage, Engine]) -> None:
    storage, engine = parts
    requests = [Request(f"L{i:015d}", 3) for i in range(40)]
    threads = [threading.Thread(target=r.run, args=(storage,)) for r in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r.outcome is None for r in requests)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(ENTRIES)).scalar_one()
    assert total == 120
    assert all(storage.get_replay(r.replay_key) == r.record for r in requests)


def test_replay_reads_keep_a_driver_connection_and_drop_a_broken_one(
    parts: tuple[SqlStorage, Engine],
) -> None:
    """get_replay reads through a kept autocommit driver connection (SQLite and PostgreSQL);
    one that broke is dropped, the read is answered through SQLAlchemy, the next read opens
    a new one, and close() closes them."""
    storage, _engine = parts
    request = Request("R000000000000001", 2)
    request.run(storage)
    assert request.outcome is None
    assert storage.get_replay(request.replay_key) == request.record
    assert len(storage._readers) == 1 and storage._reader_count == 1
    storage._readers[0].close()  # as if the server had dropped it
    assert storage.get_replay(request.replay_key) == request.record
    assert not storage._readers and storage._reader_count == 0
    assert storage.get_replay(secrets.token_bytes(48)) is None
    assert len(storage._readers) == 1 and storage._reader_count == 1
    storage.close()
    assert not storage._readers and storage._reader_count == 0


def test_replay_records_are_read_for_many_keys_at_once(parts: tuple[SqlStorage, Engine]) -> None:
    """get_replays answers for many keys in one go (the preparing thread's one read per
    batch): exactly the stored ones, whatever the order, repeats and keys without a record,
    past one statement's worth of keys, and the same through SQLAlchemy once the kept
    connection broke."""
    storage, _engine = parts
    stored = [Request(f"R{i:015d}", 1) for i in range(1, 4)]
    for request in stored:
        request.run(storage)
        assert request.outcome is None
    unknown = [secrets.token_bytes(48) for _ in range(_REPLAY_READ_MAX + 20)]
    keys = [*unknown[:5], stored[2].replay_key, stored[0].replay_key, stored[0].replay_key]
    keys += [*unknown[5:], stored[1].replay_key]  # the last one in a second statement
    want = {r.replay_key: r.record for r in stored}
    assert storage.get_replays(keys) == want
    assert storage.get_replays([]) == {}
    storage._readers[0].close()  # as if the server had dropped it
    assert storage.get_replays(keys) == want
    assert storage.get_replays(unknown) == {}


def test_a_replay_reader_that_fails_otherwise_is_dropped_not_leaked(
    parts: tuple[SqlStorage, Engine],
) -> None:
    """Any failure of a kept reader (not only a driver error) drops it: the count of readers
    stays right, so later reads still get a kept connection instead of the pool's."""
    storage, _engine = parts
    request = Request("R000000000000009", 1)
    request.run(storage)
    assert storage.get_replay(request.replay_key) == request.record
    real = storage._readers.pop()

    class Broken:
        def cursor(self) -> Any:
            raise MemoryError

        def close(self) -> None:
            real.close()

    storage._readers.append(Broken())
    with pytest.raises(MemoryError):
        storage.get_replay(request.replay_key)
    assert not storage._readers and storage._reader_count == 0
    assert storage.get_replay(request.replay_key) == request.record
    assert len(storage._readers) == 1 and storage._reader_count == 1


def _after_an_ambiguous_commit(
    storage: SqlStorage,
    case_id: str,
    n: int,
    max_per_case: int,
    in_between: Callable[[], None] | None = None,
) -> tuple[object, ReplayRecord, bytes]:
    """Submit ``n`` entries alone while the group's COMMIT succeeds but then raises (as when
    PostgreSQL loses the connection mid-COMMIT), ``in_between`` run after the commit; returns
    what intake would see, the request's record and its replay key."""
    real = storage._submit_group

    def commits_then_loses_the_connection(group: Any) -> Any:
        real(group)  # committed
        if in_between is not None:
            in_between()
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    storage._submit_group = commits_then_loses_the_connection  # type: ignore[method-assign]
    record = ReplayRecord(secrets.token_bytes(32), 202, b'{"entries":["mine"]}')
    replay_key = secrets.token_bytes(48)
    try:
        outcome: object = storage.submit(
            case_id, b"p" * 32, _entries(n), replay_key, record, 5000, max_per_case, 1000
        )
    except Exception as exc:  # what intake would see
        outcome = exc
    return outcome, record, replay_key


def test_commit_that_succeeded_but_raised_is_not_a_replay(
    parts: tuple[SqlStorage, Engine],
) -> None:
    """Group commit when the group's COMMIT fails ambiguously (PostgreSQL: the connection drops
    while COMMIT is in flight; the server may have committed). The fallback then stores each
    request alone and meets the request's OWN replay key, written by the group it was in: that
    must be recognised as this request, accepted, and never answered as a replay. Otherwise
    intake (hub/intake.py) takes the ReplayExistsError for a refusal, erases the request's
    entry keys, and still answers 202 with the stored response: entries that are in the database
    and go into the log, with no key left to decrypt them (a 202 that is not durable)."""
    storage, _engine = parts
    outcome, record, replay_key = _after_an_ambiguous_commit(storage, "AMBIGUOUSCASE001", 3, 100)
    assert storage.get_replay(replay_key) == record  # the group did commit it
    # Intake erases the entry keys on any StorageError: the answer must be a success.
    assert not isinstance(outcome, StorageError), type(outcome).__name__


@pytest.mark.parametrize("refusal", ["full", "withdrawn"])
def test_commit_that_succeeded_but_raised_is_not_a_refusal_either(
    parts: tuple[SqlStorage, Engine], refusal: str
) -> None:
    """As above, for a request whose own stored rows make the case look full (it filled the
    case exactly) or, had a withdrawal come in between, withdrawn: the one-by-one fallback must
    find the request's own replay record before it looks at the case, or intake takes
    CaseFullError for a refusal and erases the keys of stored entries."""
    storage, engine = parts

    def withdraw() -> None:
        with engine.begin() as conn:
            conn.execute(text("UPDATE cases SET withdrawn = true"))

    outcome, record, replay_key = _after_an_ambiguous_commit(
        storage,
        "EXACTLYFULLCASE1",
        MAX_PER_CASE,
        MAX_PER_CASE,
        withdraw if refusal == "withdrawn" else None,
    )
    assert storage.get_replay(replay_key) == record  # the group did commit it
    assert not isinstance(outcome, StorageError), type(outcome).__name__
