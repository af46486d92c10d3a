"""The storage interface the hub's services use, and its SQL implementation.

Why an interface: the sequencer's crash consistency is argued step by step in
specs/hub-storage.md; tests wrap :class:`Storage` (and the tile store) to fail at every step and
then check the log's invariants. Every method is one database transaction, so a failure at any
point leaves either all of a step's effects or none.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from crypto.commitment import LeafKind
from crypto.tree_state import TreeState
from hub.admission import Admit, Decision, HeldQuotaError
from hub.db.engine import is_postgres, read_connection
from hub.db.models import (
    CaseRow,
    EntryRow,
    FeedBatchRow,
    FeedRedactionRow,
    HeldEntryRow,
    HeldSubmissionRow,
    LogStateRow,
    ReplayRow,
    table_of,
)
from hub.db.multirow import insert_rows
from hub.handoff import parked_lock

__all__ = [
    "GROUP_MAX_REQUESTS",
    "CaseFullError",
    "CaseInfo",
    "CaseWithdrawnError",
    "ConflictError",
    "EntryInfo",
    "ErasureTargets",
    "HeldEntryInfo",
    "LogState",
    "NewEntry",
    "ReplayExistsError",
    "ReplayRecord",
    "SequencedBatch",
    "SqlStorage",
    "Storage",
    "StorageError",
    "StoreRequest",
    "UnknownEntryError",
    "WithdrawResult",
]

CASES = table_of(CaseRow)
ENTRIES = table_of(EntryRow)
REPLAYS = table_of(ReplayRow)
LOG = table_of(LogStateRow)
BATCHES = table_of(FeedBatchRow)
REDACTIONS = table_of(FeedRedactionRow)
HELD = table_of(HeldSubmissionRow)
HELD_ENTRIES = table_of(HeldEntryRow)


class StorageError(Exception):
    """Base of the storage layer's expected refusals."""


class ReplayExistsError(StorageError):
    """An envelope with this replay key was already processed; ``record`` is its answer."""

    def __init__(self, record: ReplayRecord) -> None:
        super().__init__("replay key already used")
        self.record = record


class CaseWithdrawnError(StorageError):
    """The case was withdrawn as a whole; it accepts nothing more."""


class CaseFullError(StorageError):
    """Accepting the request would exceed the per-case entry limit."""


class UnknownEntryError(StorageError):
    """A withdrawal names an entry id that is not an addition of this case."""


class ConflictError(StorageError):
    """A compare-and-swap on the log state lost: another sequencer moved the log."""


@dataclass(frozen=True, slots=True)
class ReplayRecord:
    envelope_sha256: bytes
    status: int
    response: bytes


@dataclass(frozen=True, slots=True)
class CaseInfo:
    case_id: str
    withdrawn: bool
    entry_count: int


@dataclass(frozen=True, slots=True)
class NewEntry:
    """An addition ready to store: leaf data computed, body and salt sealed under its own
    key (already stored in the key store)."""

    entry_id: str
    leaf_data: bytes
    ciphertext: bytes
    leaf_hash: bytes = field(init=False, repr=False, compare=False)  # computed once, here

    def __post_init__(self) -> None:
        object.__setattr__(self, "leaf_hash", hashlib.sha256(b"\x00" + self.leaf_data).digest())


@dataclass(frozen=True, slots=True)
class EntryInfo:
    """What status needs about one entry of a case."""

    entry_id: str
    kind: int
    log_index: int | None
    leaf_hash: bytes | None
    ciphertext: bytes | None
    withdraws: str | None
    withdrawn_by: str | None


@dataclass(frozen=True, slots=True)
class HeldEntryInfo:
    """An addition of a case held for review (or rejected, or withdrawn while held)."""

    entry_id: str
    state: str  # "held" | "rejected" | "withdrawn"
    leaf_hash: bytes
    ciphertext: bytes | None


@dataclass(frozen=True, slots=True)
class ErasureTargets:
    """Keys a withdrawal must erase: withdrawn entries' keys, and the keys of the current
    versions of sealed feed batches that still reveal one of them (not re-sealed yet)."""

    entry_ids: list[str]
    batches: list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class LogState:
    """Sequenced size/state (step 1) and published size/state/checkpoint (step 3)."""

    size: int
    state: TreeState
    published_size: int
    published_state: TreeState
    checkpoint: bytes


@dataclass(frozen=True, slots=True)
class SequencedBatch:
    old_size: int
    new_size: int


@dataclass(frozen=True, slots=True)
class WithdrawResult:
    """(withdrawn entry id, tombstone entry id) pairs, and ids that were withdrawn before."""

    withdrawn: list[tuple[str, str]]
    already: list[str]
    case_withdrawn: bool
    held: list[str] = field(default_factory=list)  # held additions withdrawn (no tombstone)


def _own_decision(item: StoreRequest, stored: ReplayRecord) -> tuple[Decision | None] | None:
    """The decision a request's own stored answer records, or None if ``stored`` is another
    request's: answers carry the request's fresh random entry ids, so only this request's
    own group can have stored one of its two records."""
    if stored == item.record:
        return (None if item.admit is None else Decision(held=False),)
    if item.held_record is not None and stored == item.held_record:
        return (Decision(held=True),)
    return None


@dataclass(slots=True)
class StoreRequest:
    """One submission to store: the arguments of :meth:`SqlStorage.submit`, and, once its
    group is committed, its decision or refusal (:meth:`SqlStorage.store_group`)."""

    case_id: str
    public_key: bytes
    entries: Sequence[NewEntry]
    replay_key: bytes
    record: ReplayRecord
    expires_at: int
    max_entries_per_case: int
    now: int
    admit: Admit | None
    held_record: ReplayRecord | None
    done: bool = False
    decided: bool = False
    wake: threading.Lock = field(default_factory=parked_lock)  # released once per wait
    decision: Decision | None = None
    error: BaseException | None = None


# Autocommit driver connections kept for the per-request replay read, at most.
_READERS = 4
_BUSY_S = 60.0  # SQLite readers wait for a lock as long as the engine's connections
_REPLAY_READ = "SELECT replay_key, envelope_sha256, status, response FROM replays"
_REPLAY_READ_MAX = 500  # keys per statement (SQLite allows 32,766 parameters)

# Requests committed together at most: bounds a group's transaction and the lock hold time.
GROUP_MAX_REQUESTS = 256


MakeTombstone = Callable[[str, str, int], tuple[bytes, bytes]]
"""(case id, tombstone entry id, withdrawn log index) -> (leaf data, sealed body and salt)."""

# The SQLite write lock of a round or a group commit (SqlStorage._polled_write): asked for
# every ~2 ms (SQLite's busy handler sleeps 1 ms twice, the GIL released), for as long as every
# other writer waits (hub.db.engine's busy_timeout), after which the transaction fails (a round
# is retried; a group's requests are tried one at a time).
_WRITE_LOCK_POLL_MS = 2
_SQLITE_BUSY_TIMEOUT_MS = 60_000
_WRITE_LOCK_TIMEOUT = _SQLITE_BUSY_TIMEOUT_MS / 1e3
_COPY_TYPES = {
    "text": "text",
    "bytea": "bytea",
    "integer": "int4",
    "bigint": "int8",
    "boolean": "bool",
}
_VALUES_CHUNK = 4_096  # rows per UPDATE ... FROM (VALUES ...): SQLite allows 32,766 parameters


def _sqlite_busy(exc: OperationalError) -> bool:
    """Whether SQLite refused a lock (SQLITE_BUSY), not some other failure."""
    return "database is locked" in str(exc.orig)


def _replays_in(conn: Connection, keys: Sequence[bytes]) -> dict[bytes, ReplayRecord]:
    """The replay records of those of ``keys`` that have one, read in ``conn``'s transaction."""
    rows = conn.execute(
        select(
            REPLAYS.c.replay_key, REPLAYS.c.envelope_sha256, REPLAYS.c.status, REPLAYS.c.response
        ).where(REPLAYS.c.replay_key.in_(keys))
    ).all()
    return _replay_records(rows)


def _replay_records(rows: Iterable[Any]) -> dict[bytes, ReplayRecord]:
    """Rows of (replay_key, envelope_sha256, status, response), by replay key."""
    return {bytes(r[0]): ReplayRecord(bytes(r[1]), int(r[2]), bytes(r[3])) for r in rows}


class Storage(Protocol):
    """Every durable operation of the hub; each call is atomic (one transaction)."""

    # -- intake and cases
    def get_replay(self, replay_key: bytes) -> ReplayRecord | None: ...
    def get_replays(self, replay_keys: Sequence[bytes]) -> dict[bytes, ReplayRecord]: ...
    def get_case(self, case_id: str) -> CaseInfo | None: ...
    def count_new_cases(self, since: int) -> int: ...
    def submit(
        self,
        case_id: str,
        public_key: bytes,
        entries: Sequence[NewEntry],
        replay_key: bytes,
        record: ReplayRecord,
        expires_at: int,
        max_entries_per_case: int,
        now: int,
        admit: Admit | None = None,
        held_record: ReplayRecord | None = None,
    ) -> Decision | None: ...
    def store_group(self, group: Sequence[StoreRequest]) -> None: ...
    def withdraw(
        self,
        case_id: str,
        entry_ids: Sequence[str] | None,
        new_id: Callable[[], str],
        respond: Callable[[WithdrawResult], ReplayRecord],
        replay_key: bytes,
        expires_at: int,
        now: int,
    ) -> ReplayRecord: ...
    def case_entries(self, case_id: str) -> list[EntryInfo]: ...
    def held_entries(self, case_id: str) -> list[HeldEntryInfo]: ...
    def erasure_targets(self, case_id: str | None) -> ErasureTargets: ...
    def purge_replays(self, now: int) -> int: ...

    # -- sequencer
    def load_log_state(self) -> LogState: ...
    def sequence_batch(
        self, max_entries: int, make_tombstone: MakeTombstone
    ) -> SequencedBatch | None: ...
    def leaf_data_range(self, start: int, end: int) -> list[bytes]: ...
    def publish(
        self, old_published: int, new_size: int, state: TreeState, checkpoint: bytes
    ) -> None: ...
    def count_pending(self) -> int: ...

    # -- log API
    def log_index_of_leaf(self, leaf_hash: bytes, below: int) -> int | None: ...

    # -- single-use requests (status queries)
    def claim_replay(self, replay_key: bytes, record: ReplayRecord, expires_at: int) -> None: ...


class SqlStorage:
    """:class:`Storage` on SQLite or PostgreSQL through SQLAlchemy Core."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pg = is_postgres(engine)
        self._group_lock = threading.Lock()
        self._readers: list[Any] = []  # PostgreSQL: idle autocommit connections (get_replay)
        self._reader_count = 0
        self._queue: list[StoreRequest] = []
        self._committing = False

    # -- helpers

    def _lock_case(self, conn: Connection, case_id: str) -> CaseInfo | None:
        stmt = select(CASES.c.case_id, CASES.c.withdrawn, CASES.c.entry_count).where(
            CASES.c.case_id == case_id
        )
        if self._pg:
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()
        if row is None:
            return None
        return CaseInfo(row[0], bool(row[1]), int(row[2]))

    def _insert_replay(
        self, conn: Connection, replay_key: bytes, record: ReplayRecord, expires_at: int
    ) -> None:
        conn.execute(
            insert(REPLAYS).values(
                replay_key=replay_key,
                envelope_sha256=record.envelope_sha256,
                status=record.status,
                response=record.response,
                expires_at=expires_at,
            )
        )

    def _existing_replay(self, replay_key: bytes) -> ReplayExistsError | None:
        with read_connection(self.engine) as conn:
            record = _replays_in(conn, [replay_key]).get(replay_key)
        return None if record is None else ReplayExistsError(record)

    # -- intake and cases

    def get_replay(self, replay_key: bytes) -> ReplayRecord | None:
        return self.get_replays([replay_key]).get(replay_key)

    def get_replays(self, replay_keys: Sequence[bytes]) -> dict[bytes, ReplayRecord]:
        """The replay records of those of ``replay_keys`` that have one, in one statement.

        Every submission asks this first, and the preparing thread asks it once for all the
        submissions it takes together (hub.intakeprep): on PostgreSQL one round trip instead
        of one each. It reads through a driver connection of its own (an idle autocommit
        one, kept for this read; no BEGIN on either database), at a fraction of the CPU of
        the same query built by SQLAlchemy or even of a checkout from its pool (events, and
        a rollback on return). A driver error (a lost PostgreSQL connection) drops that
        connection and asks again through SQLAlchemy, whose errors the app answers as 503
        (never a 500)."""
        keys = list(dict.fromkeys(replay_keys))
        found: dict[bytes, ReplayRecord] = {}
        for at in range(0, len(keys), _REPLAY_READ_MAX):
            found.update(self._read_replays(keys[at : at + _REPLAY_READ_MAX]))
        return found

    def _read_replays(self, keys: list[bytes]) -> dict[bytes, ReplayRecord]:
        sql = self._sql(_REPLAY_READ) + " " + self._in_list("replay_key", len(keys))
        params: tuple[Any, ...] = (keys,) if self._pg else tuple(keys)
        reader = self._take_reader()
        kept = False
        try:
            if reader is not None:
                cur = reader.cursor()
                cur.execute(sql, params)
                rows = cur.fetchall()
                cur.close()  # SQLite: ends the statement's read at once (no checkpoint held)
                kept = True
            else:
                raw = self.engine.raw_connection()
                try:
                    cur = raw.cursor()
                    cur.execute(sql, params)
                    rows = cur.fetchall()
                    cur.close()
                except self.engine.dialect.loaded_dbapi.Error:
                    raw.invalidate()
                    raise
                finally:
                    raw.close()
        except self.engine.dialect.loaded_dbapi.Error:
            # A lost connection (a restarted server): SQLAlchemy's answer (or its error,
            # which the app answers as 503) decides.
            with read_connection(self.engine) as conn:
                return _replays_in(conn, keys)
        finally:
            if reader is not None:  # kept for the next read, or dropped (whatever failed)
                self._return_reader(reader, kept)
        return _replay_records(rows)

    def _return_reader(self, reader: Any, kept: bool) -> None:
        if not kept:
            with contextlib.suppress(Exception):
                reader.close()
        with self._group_lock:
            if kept:
                self._readers.append(reader)
            else:
                self._reader_count -= 1

    def _take_reader(self) -> Any:
        """An idle autocommit driver connection for replay reads, or None (then the pool).
        Why apart from SQLAlchemy's pool: its checkout runs events (PostgreSQL: a ping) and
        its return rolls back, more work than the one-statement read, which needs no
        transaction. SQLite: only for a database file (an in-memory one is per connection)."""
        with self._group_lock:
            if self._readers:
                return self._readers.pop()
            if self._reader_count >= _READERS:
                return None
            self._reader_count += 1
        try:
            return self._connect_reader()
        except Exception:
            with self._group_lock:
                self._reader_count -= 1
            return None

    def _connect_reader(self) -> Any:
        if self._pg:
            import psycopg

            url = self.engine.url.set(drivername="postgresql")
            return psycopg.connect(
                url.render_as_string(hide_password=False), autocommit=True, connect_timeout=10
            )
        database = self.engine.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            raise ValueError("no database file")
        conn = sqlite3.connect(
            database, timeout=_BUSY_S, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout={int(_BUSY_S * 1000)}")
        return conn

    def close(self) -> None:
        """Close the replay readers; the engine is the caller's to dispose."""
        with self._group_lock:
            readers, self._readers = self._readers, []
            self._reader_count -= len(readers)
        for reader in readers:
            with contextlib.suppress(Exception):
                reader.close()

    def get_case(self, case_id: str) -> CaseInfo | None:
        with read_connection(self.engine) as conn:
            row = conn.execute(
                select(CASES.c.case_id, CASES.c.withdrawn, CASES.c.entry_count).where(
                    CASES.c.case_id == case_id
                )
            ).first()
        return None if row is None else CaseInfo(row[0], bool(row[1]), int(row[2]))

    def count_new_cases(self, since: int) -> int:
        """Cases created at or after ``since`` (unix seconds), by every hub process: the
        intake load the case puzzle's difficulty follows (hub.puzzle)."""
        with read_connection(self.engine) as conn:
            count = conn.execute(
                select(func.count()).select_from(CASES).where(CASES.c.created_at >= since)
            ).scalar_one()
        return int(count)

    def submit(
        self,
        case_id: str,
        public_key: bytes,
        entries: Sequence[NewEntry],
        replay_key: bytes,
        record: ReplayRecord,
        expires_at: int,
        max_entries_per_case: int,
        now: int,
        admit: Admit | None = None,
        held_record: ReplayRecord | None = None,
    ) -> Decision | None:
        """Store a case's new entries and the replay record durably (their keys are already
        in the key store; the caller erases them if this raises a refusal).

        Group commit (specs/hub-storage.md section 8): requests of this process that
        arrive while another group is being committed wait, then are stored together in one
        transaction with one write lock and one sync; this call returns only after the
        transaction holding this request's rows has committed, so a 202 still means durable.
        Each request is decided as if alone, in arrival order: one request's refusal
        (withdrawn case, full case, admission's HeldQuotaError, a replay) never fails another.

        With ``admit`` (hub.admission), the admission decision is taken in the same
        transaction; if it says held, the entries go to ``held_entries`` (never seen by the
        sequencer) under a new review id, and ``held_record`` is the stored answer."""
        mine = StoreRequest(
            case_id,
            public_key,
            entries,
            replay_key,
            record,
            expires_at,
            max_entries_per_case,
            now,
            admit,
            held_record,
        )
        with self._group_lock:
            self._queue.append(mine)
            leads = not self._committing
            self._committing = True
        if not leads:
            mine.wake.acquire()  # done, or handed the lead by the group before
        if not mine.done:  # lead: commit what is queued (this request first among them)
            with self._group_lock:
                group = self._queue[:GROUP_MAX_REQUESTS]
                del self._queue[:GROUP_MAX_REQUESTS]
            try:
                self._commit_group(group)
            finally:
                self._finish(group)
        if mine.error is not None:
            raise mine.error
        return mine.decision

    def _finish(self, group: list[StoreRequest]) -> None:
        """Wake each request of a committed group, and hand the lead to the oldest waiting
        one (one wake-up per request, not one per waiting thread and group)."""
        with self._group_lock:
            for item in group:
                if not item.decided:
                    # Not a StorageError: the group may have committed, so intake must not
                    # erase the keys (orphans are erased at start, hub.erasure).
                    item.error = RuntimeError("the group commit was interrupted; retry")
                item.done = True
            following = self._queue[0] if self._queue else None
            if following is None:
                self._committing = False
        for item in group:
            item.wake.release()
        if following is not None:
            following.wake.release()

    def store_group(self, group: Sequence[StoreRequest]) -> None:
        """Store and decide ``group`` (at most GROUP_MAX_REQUESTS) as one transaction with
        one sync, each request as if alone and in order: sets each one's ``decision`` or
        ``error`` and ``decided``. For a caller that groups requests itself (hub.intakewriter);
        their keys must already be in the key store."""
        self._commit_group(group)

    def _commit_group(self, group: Sequence[StoreRequest]) -> None:
        """One transaction for the whole group; if it cannot decide (a race with another
        process, a lost database), each request alone, so each gets its own answer."""
        outcomes: list[Decision | BaseException | None] | None
        try:
            outcomes = self._submit_group(group)
        except Exception:
            outcomes = None
        if outcomes is not None:
            for item, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    item.error = outcome
                else:
                    item.decision = outcome
                item.decided = True
            return
        for item in group:
            try:
                item.decision = self._submit_one(
                    item.case_id,
                    item.public_key,
                    item.entries,
                    item.replay_key,
                    item.record,
                    item.expires_at,
                    item.max_entries_per_case,
                    item.now,
                    item.admit,
                    item.held_record,
                )
            except ReplayExistsError as exc:
                # The group's COMMIT may have succeeded before it failed (a connection lost
                # mid-COMMIT): the request's own record, stored by its group, is its answer,
                # never a replay, or intake would erase the keys of stored entries.
                own = _own_decision(item, exc.record)
                if own is None:
                    item.error = exc
                else:
                    item.decision = own[0]
            except Exception as exc:
                item.error = exc
            item.decided = True

    def _sql(self, text: str) -> str:
        """A driver-level statement: written with ``?`` (sqlite3), ``%s`` for psycopg."""
        return text.replace("?", "%s") if self._pg else text

    def _in_list(self, column: str, n: int) -> str:
        """``WHERE column`` is one of n values: one array parameter on PostgreSQL (one
        statement text whatever n), n placeholders on SQLite."""
        if self._pg:
            return f"WHERE {column} = ANY(%s)"
        return f"WHERE {column} IN ({','.join('?' * n)})"

    def _submit_group(self, group: Sequence[StoreRequest]) -> list[Decision | BaseException | None]:
        """Decide and store every request of ``group`` in one transaction; returns each
        one's decision or refusal. Raises (nothing stored) if the group must be retried one
        request at a time: a replay key or new case that another process stored meanwhile
        (an integrity error), or any database failure.

        Why driver-level statements (the cursor under SQLAlchemy's transaction): on this hot
        path SQLAlchemy's statement building and caching cost more CPU than the database's
        own work; five statements serve the whole group (replays and cases read; cases,
        replays and entries written by executemany on SQLite, by one statement of column
        arrays each on PostgreSQL), plus one update of existing cases."""
        outcomes: list[Decision | BaseException | None] = []
        with self._polled_write() as conn:
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            keys = list({item.replay_key for item in group})
            cur.execute(
                "SELECT replay_key, envelope_sha256, status, response FROM replays "  # noqa: S608
                + self._in_list("replay_key", len(keys)),
                [keys] if self._pg else keys,
            )
            seen: dict[bytes, ReplayRecord] = {  # replay keys stored before or by this group
                bytes(r[0]): ReplayRecord(bytes(r[1]), int(r[2]), bytes(r[3]))
                for r in cur.fetchall()
            }
            wanted = sorted({item.case_id for item in group})
            cur.execute(
                "SELECT case_id, withdrawn, entry_count FROM cases "  # noqa: S608
                + self._in_list("case_id", len(wanted))
                + " ORDER BY case_id"
                + (" FOR UPDATE" if self._pg else ""),
                [wanted] if self._pg else wanted,
            )
            cases = {str(r[0]): CaseInfo(str(r[0]), bool(r[1]), int(r[2])) for r in cur.fetchall()}
            new_cases: dict[str, tuple[bytes, int]] = {}  # created by this group
            added: dict[str, int] = {}  # entries added to cases that existed before
            replays: list[tuple[bytes, bytes, int, bytes, int]] = []
            rows: list[tuple[str, str, int, bytes, bytes, bytes, int]] = []
            addition = int(LeafKind.ADDITION)
            for item in group:
                earlier = seen.get(item.replay_key)
                if earlier is not None:
                    outcomes.append(ReplayExistsError(earlier))
                    continue
                case = cases.get(item.case_id)
                creates_case = case is None
                count = 0 if case is None else case.entry_count
                if case is not None and case.withdrawn:
                    outcomes.append(CaseWithdrawnError("case withdrawn"))
                    continue
                n = len(item.entries)
                if count + n > item.max_entries_per_case:
                    outcomes.append(CaseFullError("case full"))
                    continue
                decision: Decision | None = None
                if item.admit is not None:
                    # A savepoint: a refusal undoes this request's bucket charges only.
                    savepoint = conn.begin_nested()
                    try:
                        decision = item.admit(conn, creates_case, n)
                    except HeldQuotaError as exc:
                        savepoint.rollback()
                        outcomes.append(exc)
                        continue
                    savepoint.commit()
                if creates_case:
                    new_cases[item.case_id] = (item.public_key, item.now)
                elif item.case_id not in new_cases:  # a case made by this group is inserted
                    added[item.case_id] = added.get(item.case_id, 0) + n  # with its count
                cases[item.case_id] = CaseInfo(item.case_id, False, count + n)
                held = decision is not None and decision.held
                stored = item.record
                if held:
                    assert item.held_record is not None and decision is not None
                    stored = item.held_record
                    if creates_case:  # held_submissions name their case: create it first
                        self._insert_cases(cur, {item.case_id: new_cases.pop(item.case_id)}, cases)
                        added[item.case_id] = 0
                    self._insert_held(
                        conn, item.case_id, count, creates_case, item.entries, decision, item.now
                    )
                seen[item.replay_key] = stored
                replays.append(
                    (
                        item.replay_key,
                        stored.envelope_sha256,
                        stored.status,
                        stored.response,
                        item.expires_at,
                    )
                )
                if not held:
                    rows.extend(
                        (
                            e.entry_id,
                            item.case_id,
                            addition,
                            e.leaf_data,
                            e.leaf_hash,
                            e.ciphertext,
                            item.now,
                        )
                        for e in item.entries
                    )
                outcomes.append(decision)
            # A plain insert: a case another process created meanwhile (PostgreSQL) is an
            # integrity error, and the group is retried one request at a time.
            self._insert_cases(cur, new_cases, cases)
            self._insert_many(
                cur,
                "replays (replay_key, envelope_sha256, status, response, expires_at)",
                "bytea bytea integer bytea bigint",
                replays,
            )
            self._insert_many(
                cur,
                "entries (entry_id, case_id, kind, leaf_data, leaf_hash, ciphertext, created_at)",
                "text text integer bytea bytea bytea bigint",
                rows,
            )
            counts = [(n, c) for c, n in sorted(added.items()) if n]
            if counts and self._pg:
                cur.execute(
                    "UPDATE cases SET entry_count = entry_count + v.n "
                    "FROM unnest(%s::integer[], %s::text[]) AS v(n, c) WHERE case_id = v.c",
                    [[n for n, _c in counts], [c for _n, c in counts]],
                )
            elif counts:
                cur.executemany(
                    "UPDATE cases SET entry_count = entry_count + ? WHERE case_id = ?", counts
                )
            cur.close()
        return outcomes

    def _insert_many(
        self, cur: Any, into: str, types: str, rows: Sequence[tuple[object, ...]]
    ) -> None:
        """Insert ``rows`` into ``into`` (a table and its column list, constants of this
        module; ``types`` their PostgreSQL types). SQLite: a few multi-row statements
        (hub.db.multirow). PostgreSQL: one binary ``COPY``, whose rows psycopg writes in C:
        measured 0.33 ms of client CPU per 200 entries, against 2.6-2.7 ms for one
        ``INSERT ... SELECT FROM unnest(...)`` of column arrays (its array dumper is Python
        per element) or for ``executemany``. Constraints hold as for an INSERT: a duplicate
        key fails the transaction, and the group is retried one request at a time."""
        if not rows:
            return
        if not self._pg:
            insert_rows(cur, into, rows)
            return
        with cur.copy(f"COPY {into} FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([_COPY_TYPES[t] for t in types.split()])
            for row in rows:
                copy.write_row(row)

    def _insert_cases(
        self, cur: Any, new_cases: dict[str, tuple[bytes, int]], cases: dict[str, CaseInfo]
    ) -> None:
        self._insert_many(
            cur,
            "cases (case_id, public_key, withdrawn, entry_count, created_at)",
            "text bytea boolean integer bigint",
            [
                (case_id, public_key, False, cases[case_id].entry_count, created)
                for case_id, (public_key, created) in sorted(new_cases.items())
            ],
        )

    def _submit_one(
        self,
        case_id: str,
        public_key: bytes,
        entries: Sequence[NewEntry],
        replay_key: bytes,
        record: ReplayRecord,
        expires_at: int,
        max_entries_per_case: int,
        now: int,
        admit: Admit | None = None,
        held_record: ReplayRecord | None = None,
    ) -> Decision | None:
        """One request in a transaction of its own (the fallback of a group): a case
        another process creates meanwhile is waited for and locked here. The replay record
        is looked at first: after a group whose COMMIT succeeded but raised, this request's
        own rows are stored, and its case may look full or (a withdrawal in between)
        withdrawn; that must be its own answer, never a refusal whose keys intake erases."""
        decision: Decision | None = None
        try:
            with self.engine.begin() as conn:
                stored = _replays_in(conn, [replay_key]).get(replay_key)
                if stored is not None:
                    raise ReplayExistsError(stored)
                case = self._lock_case(conn, case_id)
                creates_case = case is None
                if case is None:
                    # Two first submissions of one case may race here (PostgreSQL): the loser's
                    # insert waits for the winner, does nothing, and locks the winner's row.
                    new_case = (pg_insert if self._pg else sqlite_insert)(CASES).values(
                        case_id=case_id,
                        public_key=public_key,
                        withdrawn=False,
                        entry_count=0,
                        created_at=now,
                    )
                    conn.execute(new_case.on_conflict_do_nothing(index_elements=["case_id"]))
                    case = self._lock_case(conn, case_id)
                    assert case is not None
                if case.withdrawn:
                    raise CaseWithdrawnError("case withdrawn")
                if case.entry_count + len(entries) > max_entries_per_case:
                    raise CaseFullError("case full")
                if admit is not None:
                    decision = admit(conn, creates_case, len(entries))
                if decision is not None and decision.held:
                    assert held_record is not None
                    self._insert_replay(conn, replay_key, held_record, expires_at)
                    self._insert_held(
                        conn, case_id, case.entry_count, creates_case, entries, decision, now
                    )
                else:
                    self._insert_replay(conn, replay_key, record, expires_at)
                if entries and (decision is None or not decision.held):
                    conn.execute(
                        insert(ENTRIES),
                        [
                            {
                                "entry_id": e.entry_id,
                                "case_id": case_id,
                                "kind": int(LeafKind.ADDITION),
                                "leaf_data": e.leaf_data,
                                "leaf_hash": e.leaf_hash,
                                "ciphertext": e.ciphertext,
                                "created_at": now,
                            }
                            for e in entries
                        ],
                    )
                conn.execute(
                    update(CASES)
                    .where(CASES.c.case_id == case_id)
                    .values(entry_count=CASES.c.entry_count + len(entries))
                )
        except IntegrityError:
            # A concurrent request with the same replay key (or a new case) won the race.
            existing = self._existing_replay(replay_key)
            if existing is not None:
                raise existing from None
            raise
        return decision

    def _insert_held(
        self,
        conn: Connection,
        case_id: str,
        entries_before: int,
        new_case: bool,
        entries: Sequence[NewEntry],
        decision: Decision,
        now: int,
    ) -> None:
        review_id = secrets.token_hex(16)
        conn.execute(
            insert(HELD).values(
                review_id=review_id,
                case_id=case_id,
                state="held",
                reason=decision.reason or "held",
                new_case=new_case,
                entry_count=len(entries),
                address_tag=decision.address_tag,
                submitter=decision.submitter,
                addr_seen_hashes=decision.seen_hashes,
                addr_seen_cases=decision.seen_cases,
                addr_held_hashes=decision.held_hashes,
                addr_first_seen=decision.first_seen,
                case_entries_before=entries_before,
                held_at=now,
            )
        )
        if entries:
            conn.execute(
                insert(HELD_ENTRIES),
                [
                    {
                        "entry_id": e.entry_id,
                        "review_id": review_id,
                        "case_id": case_id,
                        "position": i,
                        "state": "held",
                        "leaf_data": e.leaf_data,
                        "leaf_hash": e.leaf_hash,
                        "ciphertext": e.ciphertext,
                        "created_at": now,
                    }
                    for i, e in enumerate(entries)
                ],
            )

    def withdraw(
        self,
        case_id: str,
        entry_ids: Sequence[str] | None,
        new_id: Callable[[], str],
        respond: Callable[[WithdrawResult], ReplayRecord],
        replay_key: bytes,
        expires_at: int,
        now: int,
    ) -> ReplayRecord:
        """Append one pending tombstone per live addition named (or all), mark them withdrawn
        and drop their ciphertexts, atomically. Erasing their keys is the caller's next step
        (:meth:`erasure_targets`), before it answers."""
        try:
            with self.engine.begin() as conn:
                case = self._lock_case(conn, case_id)
                if case is None:
                    raise UnknownEntryError("no such case")
                rows = conn.execute(
                    select(ENTRIES.c.entry_id, ENTRIES.c.withdrawn_by)
                    .where(ENTRIES.c.case_id == case_id, ENTRIES.c.kind == int(LeafKind.ADDITION))
                    .order_by(ENTRIES.c.seq)
                ).all()
                live = [r[0] for r in rows if r[1] is None]
                gone = {r[0] for r in rows if r[1] is not None}
                # Held additions were never logged: withdrawn without a tombstone, their
                # ciphertexts dropped here and their keys erased by the caller.
                held_rows = conn.execute(
                    select(HELD_ENTRIES.c.entry_id, HELD_ENTRIES.c.state).where(
                        HELD_ENTRIES.c.case_id == case_id
                    )
                ).all()
                held_live = {r[0] for r in held_rows if r[1] == "held"}
                held_gone = {r[0] for r in held_rows if r[1] != "held"}
                if entry_ids is None:
                    targets, already = live, []
                    held_targets = sorted(held_live)
                else:
                    known = set(live) | gone | held_live | held_gone
                    if any(e not in known for e in entry_ids):
                        raise UnknownEntryError("unknown entry")
                    wanted = set(entry_ids)
                    targets = [e for e in live if e in wanted]
                    already = [e for e in entry_ids if e in gone or e in held_gone]
                    held_targets = [e for e in entry_ids if e in held_live]
                if held_targets:
                    conn.execute(
                        update(HELD_ENTRIES)
                        .where(HELD_ENTRIES.c.entry_id.in_(held_targets))
                        .values(state="withdrawn", leaf_data=None, ciphertext=None)
                    )
                pairs = [(target, new_id()) for target in targets]
                if pairs:
                    conn.execute(
                        insert(ENTRIES),
                        [
                            {
                                "entry_id": tomb,
                                "case_id": case_id,
                                "kind": int(LeafKind.TOMBSTONE),
                                "withdraws": target,
                                "created_at": now,
                            }
                            for target, tomb in pairs
                        ],
                    )
                    for target, tomb in pairs:
                        conn.execute(
                            update(ENTRIES)
                            .where(ENTRIES.c.entry_id == target)
                            .values(withdrawn_by=tomb, ciphertext=None)
                        )
                whole = entry_ids is None
                if whole:
                    conn.execute(
                        update(CASES).where(CASES.c.case_id == case_id).values(withdrawn=True)
                    )
                record = respond(
                    WithdrawResult(pairs, already, whole or case.withdrawn, held_targets)
                )
                self._insert_replay(conn, replay_key, record, expires_at)
                return record
        except IntegrityError:
            existing = self._existing_replay(replay_key)
            if existing is not None:
                raise existing from None
            raise

    def case_entries(self, case_id: str) -> list[EntryInfo]:
        with read_connection(self.engine) as conn:
            rows = conn.execute(
                select(
                    ENTRIES.c.entry_id,
                    ENTRIES.c.kind,
                    ENTRIES.c.log_index,
                    ENTRIES.c.leaf_hash,
                    ENTRIES.c.ciphertext,
                    ENTRIES.c.withdraws,
                    ENTRIES.c.withdrawn_by,
                )
                .where(ENTRIES.c.case_id == case_id)
                .order_by(ENTRIES.c.seq)
            ).all()
        return [
            EntryInfo(
                r[0],
                int(r[1]),
                None if r[2] is None else int(r[2]),
                None if r[3] is None else bytes(r[3]),
                None if r[4] is None else bytes(r[4]),
                r[5],
                r[6],
            )
            for r in rows
        ]

    def held_entries(self, case_id: str) -> list[HeldEntryInfo]:
        """The case's additions held for review, rejected or withdrawn while held."""
        with read_connection(self.engine) as conn:
            rows = conn.execute(
                select(
                    HELD_ENTRIES.c.entry_id,
                    HELD_ENTRIES.c.state,
                    HELD_ENTRIES.c.leaf_hash,
                    HELD_ENTRIES.c.ciphertext,
                )
                .where(HELD_ENTRIES.c.case_id == case_id)
                .order_by(
                    HELD_ENTRIES.c.created_at, HELD_ENTRIES.c.review_id, HELD_ENTRIES.c.position
                )
            ).all()
        return [
            HeldEntryInfo(r[0], str(r[1]), bytes(r[2]), None if r[3] is None else bytes(r[3]))
            for r in rows
        ]

    def erasure_targets(self, case_id: str | None) -> ErasureTargets:
        """What to erase for one case's withdrawals (or, with None, for every case: the
        start-up reconciliation after a key-store restore or a crash mid-erase)."""
        with read_connection(self.engine) as conn:
            stmt = select(ENTRIES.c.entry_id, ENTRIES.c.log_index).where(
                ENTRIES.c.withdrawn_by.is_not(None)
            )
            if case_id is not None:
                stmt = stmt.where(ENTRIES.c.case_id == case_id)
            rows = conn.execute(stmt).all()
            indexes = sorted({int(r[1]) for r in rows if r[1] is not None})
            redacted: set[int] = set()
            for i in range(0, len(indexes), 500):
                part = indexes[i : i + 500]
                redacted.update(
                    int(r[0])
                    for r in conn.execute(
                        select(REDACTIONS.c.log_index).where(REDACTIONS.c.log_index.in_(part))
                    ).all()
                )
            batches: set[tuple[int, int]] = set()
            for index in indexes:
                if index in redacted:
                    continue
                row = conn.execute(
                    select(BATCHES.c.start, BATCHES.c.version).where(
                        BATCHES.c.start <= index, BATCHES.c.end > index
                    )
                ).first()
                if row is not None:
                    batches.add((int(row[0]), int(row[1])))
            # Held additions rejected by review or withdrawn while held: never logged, never in
            # a batch; only their keys to erase.
            stmt = select(HELD_ENTRIES.c.entry_id).where(HELD_ENTRIES.c.state != "held")
            if case_id is not None:
                stmt = stmt.where(HELD_ENTRIES.c.case_id == case_id)
            held_gone = [str(r[0]) for r in conn.execute(stmt).all()]
        return ErasureTargets([*(str(r[0]) for r in rows), *held_gone], sorted(batches))

    def purge_replays(self, now: int) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(delete(REPLAYS).where(REPLAYS.c.expires_at < now))
        return int(result.rowcount)

    # -- sequencer

    def load_log_state(self) -> LogState:
        with read_connection(self.engine) as conn:
            row = conn.execute(
                select(
                    LOG.c.size,
                    LOG.c.state,
                    LOG.c.published_size,
                    LOG.c.published_state,
                    LOG.c.checkpoint,
                ).where(LOG.c.id == 1)
            ).one()
        return LogState(
            size=int(row[0]),
            state=TreeState.from_bytes(bytes(row[1]), expected_size=int(row[0])),
            published_size=int(row[2]),
            published_state=TreeState.from_bytes(bytes(row[3]), expected_size=int(row[2])),
            checkpoint=bytes(row[4]),
        )

    def sequence_batch(
        self, max_entries: int, make_tombstone: MakeTombstone
    ) -> SequencedBatch | None:
        """Step 1: give the oldest pending entries the next log indexes, in a uniformly random
        order, and extend the tree state, in one transaction guarded by a compare-and-swap on
        the log size.

        The round is the oldest ``max_entries`` pending entries (acceptance order); within it
        the order is a permutation drawn from ``secrets``, so a partner cannot tell which
        entries of a round came from one request or case (specs/hub-storage.md section 5). The
        one constraint: a tombstone follows the addition it withdraws if both are in the round
        (partners require it); where the draw puts it first the two swap places, which keeps
        the order uniform over all orders meeting the constraint (each has 2^k preimages for k
        such pairs). Tombstone bodies are built after every index of the round is known.

        Why the round is read and computed before the write lock is taken: every column read
        (entry id, case, leaf data, what a tombstone withdraws) is fixed once the entry is
        stored, and only a sequencer gives log indexes, so a read snapshot says what the write
        transaction would; that transaction re-checks the log size and that every row is
        still pending, and only then writes. Under load every intake commit waits for the
        write lock (section 5, "Round timing")."""
        with read_connection(self.engine) as conn:
            size, state_bytes, published = conn.execute(
                select(LOG.c.size, LOG.c.state, LOG.c.published_size).where(LOG.c.id == 1)
            ).one()
            size, published = int(size), int(published)
            if size != published:
                raise ConflictError("the previous batch is not published yet")
            pending = conn.exec_driver_sql(
                self._sql(
                    "SELECT seq, entry_id, case_id, leaf_data, withdraws, leaf_hash FROM entries "
                    "WHERE log_index IS NULL ORDER BY seq LIMIT ?"
                ),
                (max_entries,),
            ).all()
            if not pending:
                return None
            slots = list(range(len(pending)))
            secrets.SystemRandom().shuffle(slots)  # slots[i]: position of pending[i]
            row_of = {r[1]: i for i, r in enumerate(pending)}
            for i, r in enumerate(pending):
                j = row_of.get(r[4]) if r[3] is None and r[4] is not None else None
                if j is not None and slots[i] < slots[j]:
                    slots[i], slots[j] = slots[j], slots[i]
            index_of = {r[1]: size + slots[i] for i, r in enumerate(pending)}
            need = [r[4] for r in pending if r[3] is None and r[4] is not None]
            need = [e for e in need if e not in index_of]
            if need:
                for entry_id, log_index in conn.execute(
                    select(ENTRIES.c.entry_id, ENTRIES.c.log_index).where(
                        ENTRIES.c.entry_id.in_(need), ENTRIES.c.log_index.is_not(None)
                    )
                ).all():
                    index_of[entry_id] = int(log_index)
        state = TreeState.from_bytes(bytes(state_bytes), expected_size=size)
        leaf_hashes: list[bytes] = [b""] * len(pending)
        # Rows are written in acceptance order (``pending``'s), whatever their log order: a
        # withdrawal locks its case's additions in that order too, and two transactions
        # locking the same rows in different orders deadlock on PostgreSQL.
        # SQLite: an addition's leaf hash is stored with it at intake, and rewriting the same
        # bytes still rewrites its (random-order) index entry, which made the round's commit
        # five times larger; only a hash that is missing or differs is written. PostgreSQL
        # adds index entries for every column of a row whose log_index changes anyway, and
        # there all additions are written together (_set_indexes_pg).
        plain: list[tuple[int, int]] = []  # (log index, seq): leaf hash stored already
        hashed: list[tuple[int, bytes, int]] = []  # (log index, leaf hash, seq)
        tombs: list[tuple[int, bytes, bytes, bytes, int]] = []  # (..., leaf, sealed, seq)
        sha256 = hashlib.sha256
        for i, (seq, entry_id, case_id, leaf_data, withdraws, stored) in enumerate(pending):
            index = size + slots[i]
            if leaf_data is None:
                target = index_of.get(withdraws) if withdraws is not None else None
                if target is None or target >= index:
                    raise ConflictError("a tombstone precedes the entry it withdraws")
                leaf, sealed = make_tombstone(case_id, entry_id, target)
                lh = sha256(b"\x00" + leaf).digest()
                tombs.append((index, lh, leaf, sealed, seq))
            else:
                lh = sha256(b"\x00" + bytes(leaf_data)).digest()
                if not self._pg and stored is not None and bytes(stored) == lh:
                    plain.append((index, seq))
                else:
                    hashed.append((index, lh, seq))
            leaf_hashes[slots[i]] = lh
        new_state, _ = state.append(leaf_hashes)
        with self._polled_write() as conn:
            stmt = select(LOG.c.size).where(LOG.c.id == 1)
            if self._pg:
                stmt = stmt.with_for_update()
            if int(conn.execute(stmt).scalar_one()) != size:
                raise ConflictError("another sequencer extended the log")
            written = self._set_indexes(conn, plain)
            if hashed and self._pg:
                written += self._set_indexes_pg(conn, hashed)
            elif hashed:
                written += self._update_many(
                    conn,
                    "UPDATE entries SET log_index = ?, leaf_hash = ? "
                    "WHERE seq = ? AND log_index IS NULL",
                    hashed,
                )
            if tombs:
                written += self._update_many(
                    conn,
                    "UPDATE entries SET log_index = ?, leaf_hash = ?, leaf_data = ?, "
                    "ciphertext = ? WHERE seq = ? AND log_index IS NULL",
                    tombs,
                )
            if written != len(pending):
                raise ConflictError("another sequencer took entries of this round")
            result = conn.execute(
                update(LOG)
                .where(LOG.c.id == 1, LOG.c.size == size)
                .values(size=new_state.size, state=new_state.to_bytes())
            )
            if result.rowcount != 1:
                raise ConflictError("another sequencer extended the log")
            return SequencedBatch(size, new_state.size)

    def _set_indexes(self, conn: Connection, rows: Sequence[tuple[int, int]]) -> int:
        """SQLite: the log index of each pending entry by seq; the number of rows changed.

        One UPDATE ... FROM (VALUES ...) per chunk of rows, not one statement per row: the
        sqlite3 module releases the GIL around every statement, and in a process whose other
        threads keep the GIL busy each release costs up to a switch interval (5 ms), so 1,000
        single-row statements took 0.1-0.4 s under load instead of 10 ms."""
        written = 0
        cursor = conn.connection.cursor()
        try:
            for i in range(0, len(rows), _VALUES_CHUNK):
                chunk = rows[i : i + _VALUES_CHUNK]
                cursor.execute(
                    "UPDATE entries SET log_index = v.column1 "  # noqa: S608 (placeholders only)
                    f"FROM (VALUES {','.join(['(?,?)'] * len(chunk))}) AS v "
                    "WHERE entries.seq = v.column2 AND entries.log_index IS NULL",
                    [value for row in chunk for value in row],
                )
                written += int(cursor.rowcount)
        finally:
            cursor.close()
        return written

    def _set_indexes_pg(self, conn: Connection, rows: Sequence[tuple[int, bytes, int]]) -> int:
        """PostgreSQL: (log index, leaf hash) of each pending entry by seq, in two statements
        whatever the count; the number of rows changed.

        The rows are first locked in ``seq`` order (a withdrawal locks its case's additions
        in that order too; two transactions locking the same rows in different orders
        deadlock), then updated from column arrays; one statement per row cost 0.1-0.2 ms
        each, most of a round under load. The lock joins the array (``seq = ANY(array)``
        was planned, on a table not yet analysed, as a scan of the pending rows testing each
        against the whole array: quadratic, 7.7 s for a 65,836-entry round)."""
        seqs = [r[2] for r in rows]
        cursor = conn.connection.cursor()
        try:
            cursor.execute(
                "SELECT e.seq FROM entries AS e JOIN unnest(%s::bigint[]) AS v(s) "
                "ON e.seq = v.s WHERE e.log_index IS NULL ORDER BY e.seq FOR UPDATE OF e",
                [seqs],
            )
            cursor.fetchall()
            cursor.execute(
                "UPDATE entries SET log_index = v.i, leaf_hash = v.h "
                "FROM unnest(%s::bigint[], %s::bytea[], %s::bigint[]) AS v(i, h, s) "
                "WHERE entries.seq = v.s AND entries.log_index IS NULL",
                [[r[0] for r in rows], [r[1] for r in rows], seqs],
            )
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def _update_many(self, conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> int:
        """One driver-level executemany (SQLAlchemy's per-row parameter handling cost more
        than the statements); the number of rows changed."""
        if not rows:
            return 0
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(self._sql(sql), rows)
            return int(cursor.rowcount)
        finally:
            cursor.close()

    @contextlib.contextmanager
    def _polled_write(self) -> Iterator[Connection]:
        """A write transaction of the sequencer or of a group commit. On SQLite the write
        lock is asked for every ~2 ms instead of through SQLite's busy handler, whose sleeps
        grow to 100 ms: the lock is held for milliseconds at a time, and with that handler a
        round waited up to 0.3 s for it, a group commit up to 38 ms behind a round
        (specs/hub-storage.md sections 5 and 8)."""
        if self._pg:
            with self.engine.begin() as conn:
                yield conn
            return
        deadline = time.monotonic() + _WRITE_LOCK_TIMEOUT
        with self.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            raw.execute(f"PRAGMA busy_timeout = {_WRITE_LOCK_POLL_MS}")
            try:
                while True:
                    try:
                        trans = conn.begin()  # BEGIN IMMEDIATE (hub.db.engine)
                        break
                    except OperationalError as exc:
                        if not _sqlite_busy(exc) or time.monotonic() > deadline:
                            raise
            finally:
                raw.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
            with trans:
                yield conn

    def leaf_data_range(self, start: int, end: int) -> list[bytes]:
        # Driver-level: a round reads its thousand rows here, and SQLAlchemy's row
        # processing cost several times the query.
        with read_connection(self.engine) as conn:
            rows = conn.exec_driver_sql(
                self._sql(
                    "SELECT log_index, leaf_data FROM entries "
                    "WHERE log_index >= ? AND log_index < ? ORDER BY log_index"
                ),
                (start, end),
            ).all()
        out: list[bytes] = []
        for expected, (index, leaf) in enumerate(rows, start):
            if int(index) != expected or leaf is None:
                break
            out.append(bytes(leaf))
        return out

    def publish(
        self, old_published: int, new_size: int, state: TreeState, checkpoint: bytes
    ) -> None:
        """Step 3: record the signed checkpoint for ``new_size`` (compare-and-swap)."""
        with self._polled_write() as conn:
            result = conn.execute(
                update(LOG)
                .where(
                    LOG.c.id == 1,
                    LOG.c.published_size == old_published,
                    LOG.c.size >= new_size,
                )
                .values(
                    published_size=new_size,
                    published_state=state.to_bytes(),
                    checkpoint=checkpoint,
                )
            )
            if result.rowcount != 1:
                raise ConflictError("another sequencer published first")

    def count_pending(self) -> int:
        with read_connection(self.engine) as conn:
            value = conn.execute(
                select(func.count()).select_from(ENTRIES).where(ENTRIES.c.log_index.is_(None))
            ).scalar_one()
        return int(value)

    # -- log API

    def log_index_of_leaf(self, leaf_hash: bytes, below: int) -> int | None:
        with read_connection(self.engine) as conn:
            row = conn.execute(
                select(ENTRIES.c.log_index).where(
                    ENTRIES.c.leaf_hash == leaf_hash,
                    ENTRIES.c.log_index.is_not(None),
                    ENTRIES.c.log_index < below,
                )
            ).first()
        return None if row is None else int(row[0])

    # -- single-use requests (status queries)

    def claim_replay(self, replay_key: bytes, record: ReplayRecord, expires_at: int) -> None:
        """Record a replay key that must never be answered again; ReplayExistsError (with the
        earlier record) if it was recorded before, by this or a concurrent request."""
        try:
            with self.engine.begin() as conn:
                self._insert_replay(conn, replay_key, record, expires_at)
        except IntegrityError:
            existing = self._existing_replay(replay_key)
            if existing is not None:
                raise existing from None
            raise
