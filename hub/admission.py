"""Admission control: how many hashes and new cases an address, a trusted submitter and the
whole hub may add, counted in the database (specs/hub-api.md section 6.2).

Why in the database: the in-memory request limits (hub/ratelimit.py) count requests in one
process; a flood of 1,000-hash requests, each from a fresh case, passes them easily. These
buckets count what reaches the log (hashes and new cases), survive restarts and are shared by
every hub process on one database. A submission that does not fit is not refused but held for
review (hub/review.py): a person is never told "no" by a counter, and nothing held reaches the
log or a partner until an operator releases it.

Why keyed hashes: an address is personal data; the buckets are keyed by HMAC-SHA256, under a
per-hub secret (DATA/admission.key, 0600), of the address prefix (IPv4 /32, IPv6 /64), so the
database never holds an address, and a copy of it without the secret cannot be matched against
a list of addresses. Rows expire after ``admission_retention``.

Each call to :func:`admit` runs inside the submission's transaction (hub.storage): the bucket
rows are locked (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so
concurrent requests in several processes cannot both spend the same tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from hub.db.engine import read_connection
from hub.db.models import AdmissionBucketRow, HeldEntryRow, table_of
from hub.keystore import load_hex_secret
from hub.settings import Settings

__all__ = [
    "ADMISSION_KEY_NAME",
    "GLOBAL_TAG",
    "Admit",
    "Bucket",
    "Decision",
    "HeldQuotaError",
    "Policy",
    "RecentlyHeld",
    "address_prefix",
    "address_tag",
    "admit",
    "case_tag",
    "load_admission_key",
    "precheck",
    "purge_buckets",
    "submitter_tag",
]

ADMISSION_KEY_NAME = "admission.key"
_KEY_SIZE = 32
BUCKETS = table_of(AdmissionBucketRow)
HELD_ENTRIES = table_of(HeldEntryRow)
GLOBAL_TAG = b"\x00" * 32
"""The whole hub's bucket (an HMAC output is this value with probability 2^-256)."""

_DOMAIN_ADDRESS = b"ncii-hub/admission/address/v1\x00"
_DOMAIN_SUBMITTER = b"ncii-hub/admission/submitter/v1\x00"
_DOMAIN_CASE = b"ncii-hub/review/case/v1\x00"


class HeldQuotaError(Exception):
    """Too much is already held for review (for this address, or hub-wide): answer 429."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("review allowance exhausted")
        self.retry_after = retry_after


def load_admission_key(data_dir: Path) -> bytes:
    """The hub's admission secret (DATA/admission.key, 32 random bytes as hex, mode 0600),
    created on first use. Every hub process of one log must share it (they share DATA)."""
    return load_hex_secret(data_dir / ADMISSION_KEY_NAME, _KEY_SIZE)


def address_prefix(host: str) -> bytes:
    """What limits are keyed by: an IPv4 address whole, an IPv6 address's /64 (one
    subscriber usually holds a whole /64). IPv4-mapped IPv6 counts as IPv4; anything that is
    not an address (a Unix socket, a test client) shares one bucket."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return b"?"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return b"4" + ip.ipv4_mapped.packed
        return b"6" + ip.packed[:8]
    return b"4" + ip.packed


def address_tag(key: bytes, host: str) -> bytes:
    """HMAC-SHA256 of the address prefix under the hub's admission key."""
    return hmac.new(key, _DOMAIN_ADDRESS + address_prefix(host), hashlib.sha256).digest()


def submitter_tag(key: bytes, name: str) -> bytes:
    """The bucket of a trusted submitter (by name, so a key rotation keeps its counts)."""
    return hmac.new(key, _DOMAIN_SUBMITTER + name.encode(), hashlib.sha256).digest()


def case_tag(key: bytes, case_id: str) -> str:
    """An opaque 12-hex-digit label of a case for reviewers: groups held submissions of one
    case without showing its id."""
    return hmac.new(key, _DOMAIN_CASE + case_id.encode(), hashlib.sha256).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Bucket:
    """Rates per second and bursts for hashes and new cases."""

    hashes_rate: float
    hashes_burst: int
    cases_rate: float
    cases_burst: int

    @classmethod
    def per_hour_day(
        cls, hashes_per_hour: float, hashes_burst: int, cases_per_day: float, cases_burst: int
    ) -> Bucket:
        return cls(hashes_per_hour / 3600, hashes_burst, cases_per_day / 86400, cases_burst)


@dataclass(frozen=True, slots=True)
class Policy:
    """The limits in force (from settings; a trusted submitter brings its own Bucket)."""

    enabled: bool
    address: Bucket
    whole: Bucket
    submitter_default: Bucket
    held_rate: float
    held_burst: int
    held_max_entries: int
    retention: int

    @classmethod
    def from_settings(cls, s: Settings) -> Policy:
        return cls(
            enabled=s.admission_control,
            address=Bucket.per_hour_day(
                s.anon_hashes_per_hour,
                s.anon_hashes_burst,
                s.anon_cases_per_day,
                s.anon_cases_burst,
            ),
            whole=Bucket(
                s.global_hashes_per_hour / 3600,
                s.global_hashes_burst,
                s.global_cases_per_hour / 3600,
                s.global_cases_burst,
            ),
            submitter_default=Bucket.per_hour_day(
                s.submitter_hashes_per_hour,
                s.submitter_hashes_burst,
                s.submitter_cases_per_day,
                s.submitter_cases_burst,
            ),
            held_rate=s.held_hashes_per_day / 86400,
            held_burst=s.held_hashes_burst,
            held_max_entries=s.held_max_entries,
            retention=s.admission_retention,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """What admission decided, and the history a reviewer sees if held."""

    held: bool
    reason: str | None = None
    address_tag: bytes | None = None
    seen_hashes: int = 0
    seen_cases: int = 0
    held_hashes: int = 0
    first_seen: int | None = None
    submitter: str | None = None


Admit = Callable[[Connection, bool, int], Decision]
"""(transaction, whether this request creates the case, hashes) -> Decision; raises
HeldQuotaError. Built by :func:`admit` with the request's keys bound."""


@dataclass(slots=True)
class _State:
    tag: bytes
    limits: Bucket
    hashes: float
    cases: float
    held: float
    stamp: float
    first_seen: int
    seen_hashes: int
    seen_cases: int
    held_hashes: int
    fresh: bool


def _lock(conn: Connection, tag: bytes, limits: Bucket, held_burst: int, now: float) -> _State:
    stmt = select(
        BUCKETS.c.hashes,
        BUCKETS.c.cases,
        BUCKETS.c.held,
        BUCKETS.c.stamp,
        BUCKETS.c.first_seen,
        BUCKETS.c.seen_hashes,
        BUCKETS.c.seen_cases,
        BUCKETS.c.held_hashes,
    ).where(BUCKETS.c.tag == tag)
    pg = conn.dialect.name == "postgresql"
    if pg:
        stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()  # the usual case: the row exists, now locked
        if row is not None:
            return _state_of(tag, limits, row)
        # Create the row if missing (a racing creator wins; we then wait for its lock).
        conn.execute(
            pg_insert(BUCKETS)
            .values(
                tag=tag,
                hashes=float(limits.hashes_burst),
                cases=float(limits.cases_burst),
                held=float(held_burst),
                stamp=now,
                first_seen=int(now),
                seen_hashes=0,
                seen_cases=0,
                held_hashes=0,
                expires_at=int(now) + 86400,
            )
            .on_conflict_do_nothing(index_elements=["tag"])
        )
    row = conn.execute(stmt).first()
    if row is None:  # SQLite: BEGIN IMMEDIATE already serialises writers
        return _State(
            tag,
            limits,
            float(limits.hashes_burst),
            float(limits.cases_burst),
            float(held_burst),
            now,
            int(now),
            0,
            0,
            0,
            True,
        )
    return _state_of(tag, limits, row)


def _state_of(tag: bytes, limits: Bucket, row: Sequence[Any]) -> _State:
    return _State(
        tag,
        limits,
        float(row[0]),
        float(row[1]),
        float(row[2]),
        float(row[3]),
        int(row[4]),
        int(row[5]),
        int(row[6]),
        int(row[7]),
        False,
    )


def _refill(state: _State, now: float, held_rate: float, held_burst: int) -> None:
    elapsed = max(0.0, now - state.stamp)
    lim = state.limits
    state.hashes = min(float(lim.hashes_burst), state.hashes + elapsed * lim.hashes_rate)
    state.cases = min(float(lim.cases_burst), state.cases + elapsed * lim.cases_rate)
    state.held = min(float(held_burst), state.held + elapsed * held_rate)
    state.stamp = max(state.stamp, now)


def _store(conn: Connection, state: _State, now: float, policy: Policy) -> None:
    lim = state.limits
    # Kept while it still matters: until every bucket is full again, and for the history.
    refill = max(
        (lim.hashes_burst - state.hashes) / lim.hashes_rate,
        (lim.cases_burst - state.cases) / lim.cases_rate,
        (policy.held_burst - state.held) / policy.held_rate,
        0.0,
    )
    expires = int(now + max(float(policy.retention), min(refill, 10 * 366 * 86400.0)))
    values = {
        "hashes": state.hashes,
        "cases": state.cases,
        "held": state.held,
        "stamp": state.stamp,
        "seen_hashes": state.seen_hashes,
        "seen_cases": state.seen_cases,
        "held_hashes": state.held_hashes,
        "expires_at": expires,
    }
    if state.fresh:
        conn.execute(
            sqlite_insert(BUCKETS).values(tag=state.tag, first_seen=state.first_seen, **values)
        )
    else:
        conn.execute(update(BUCKETS).where(BUCKETS.c.tag == state.tag).values(**values))


def admit(
    policy: Policy,
    now: float,
    *,
    address: bytes | None,
    submitter: tuple[str, bytes, Bucket] | None,
) -> Admit:
    """The admission step for one request: charged to the trusted submitter's bucket if the
    request carries a valid submitter signature, else to its address and the whole hub."""

    def decide(conn: Connection, new_case: bool, hashes: int) -> Decision:
        if not policy.enabled:
            return Decision(False)
        if submitter is not None:
            wanted = [(submitter[1], submitter[2], "submitter")]
        else:
            assert address is not None
            wanted = [(address, policy.address, "address"), (GLOBAL_TAG, policy.whole, "global")]
        states = {
            tag: _lock(conn, tag, limits, policy.held_burst, now)
            for tag, limits, _ in sorted(wanted, key=lambda w: w[0])
        }
        for state in states.values():
            _refill(state, now, policy.held_rate, policy.held_burst)
        cases = 1 if new_case else 0
        reason: str | None = None
        for tag, _limits, label in wanted:
            state = states[tag]
            if state.hashes < hashes:
                reason = reason or f"{label}_hashes"
            if state.cases < cases:
                reason = reason or f"{label}_cases"
        first = states[wanted[0][0]]
        first.seen_hashes += hashes
        first.seen_cases += cases
        if reason is None:
            for state in states.values():
                state.hashes -= hashes
                state.cases -= cases
        else:
            waiting = conn.execute(
                select(func.count()).select_from(HELD_ENTRIES).where(HELD_ENTRIES.c.state == "held")
            ).scalar_one()
            if first.held < hashes or int(waiting) + hashes > policy.held_max_entries:
                missing = max(0.0, hashes - first.held)
                wait = missing / policy.held_rate if first.held < hashes else 3600.0
                raise HeldQuotaError(min(max(wait, 1.0), 86400.0))
            first.held -= hashes
            first.held_hashes += hashes
        for state in states.values():
            _store(conn, state, now, policy)
        return Decision(
            reason is not None,
            reason,
            address,
            first.seen_hashes,
            first.seen_cases,
            first.held_hashes,
            first.first_seen,
            None if submitter is None else submitter[0],
        )

    return decide


class RecentlyHeld:
    """Bucket tags this process recently held or refused (bounded, least recent dropped).

    Why: the early refusal (:func:`precheck`) costs a database read; only senders already
    over their allowance need it, so ordinary submissions skip it."""

    def __init__(self, max_tags: int = 10_000) -> None:
        self.max_tags = max_tags
        self._tags: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def mark(self, tag: bytes) -> None:
        with self._lock:
            self._tags[tag] = None
            self._tags.move_to_end(tag)
            while len(self._tags) > self.max_tags:
                self._tags.popitem(last=False)

    def __contains__(self, tag: object) -> bool:
        with self._lock:
            return tag in self._tags


def precheck(
    engine: Engine,
    policy: Policy,
    now: float,
    *,
    address: bytes | None,
    submitter: tuple[str, bytes, Bucket] | None,
    hashes: int,
) -> None:
    """Raise HeldQuotaError early, before any sealing or key-store work, when the request
    could only be held and its sender's review allowance is already used up: a flood that is
    being refused must cost the hub a row read, not a key-store write and erase. Advisory
    only (no lock): :func:`admit` decides again inside the storing transaction."""
    if not policy.enabled:
        return
    if submitter is not None:
        tag, limits = submitter[1], submitter[2]
    else:
        assert address is not None
        tag, limits = address, policy.address
    with read_connection(engine) as conn:
        row = conn.execute(
            select(BUCKETS.c.hashes, BUCKETS.c.held, BUCKETS.c.stamp).where(BUCKETS.c.tag == tag)
        ).first()
    if row is None:
        return
    elapsed = max(0.0, now - float(row[2]))
    tokens = min(float(limits.hashes_burst), float(row[0]) + elapsed * limits.hashes_rate)
    held = min(float(policy.held_burst), float(row[1]) + elapsed * policy.held_rate)
    if tokens < hashes and held < hashes:
        raise HeldQuotaError(min(max((hashes - held) / policy.held_rate, 1.0), 86400.0))


def purge_buckets(engine: Engine, now: int) -> int:
    """Delete expired bucket rows (their counters are forgotten); returns how many."""
    with engine.begin() as conn:
        result = conn.execute(delete(BUCKETS).where(BUCKETS.c.expires_at < now))
    return int(result.rowcount)
