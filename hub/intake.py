"""Submissions: verify, validate, store durably, then answer 202 (specs/hub-api.md 3.1).

Order matters: the signature is checked over the exact bytes before the body is parsed; the
replay record is stored in the same transaction as the entries, so a retry gets the same answer
and nothing is stored twice. Each entry gets its own key, written to the key store (hub.vault)
before the ciphertext reaches the database, and erased again if the database refuses.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError

from crypto import envelope
from crypto.case import case_id as case_id_of
from crypto.commitment import SALT_SIZE, LeafData, LeafKind
from crypto.errors import CryptoError
from crypto.submitter import SUBMITTER_HEADER, Endorsement, verify_endorsement
from hub.admission import (
    Admit,
    Decision,
    HeldQuotaError,
    address_tag,
    admit,
    precheck,
    submitter_tag,
)
from hub.atrest import ENTRY_KEY_SIZE, seal_entry
from hub.context import HubContext, max_age_of, open_envelope
from hub.errors import HubError
from hub.puzzle import require_case_puzzle
from hub.storage import (
    CaseFullError,
    CaseWithdrawnError,
    NewEntry,
    ReplayExistsError,
    ReplayRecord,
    StorageError,
    StoreRequest,
)
from hub.submission import parse_submission
from hub.submitters import Submitter

__all__ = [
    "Arrival",
    "Prepared",
    "Result",
    "answer",
    "check_replay",
    "new_entry_id",
    "prepare",
    "prepare_each",
    "refused_outright",
    "replayed_answer",
    "store",
    "submit",
    "trusted_submitter",
]


_STAMP = 6  # leading bytes of an entry id: the hub's clock in milliseconds
_ID = 10  # random bytes of an entry id (16 bytes, 32 hex digits, in all)
_FRESH = _ID + SALT_SIZE + ENTRY_KEY_SIZE  # random bytes per entry: id, salt, key


def _stamp(clock: float) -> bytes:
    return (int(clock * 1000) % (1 << (8 * _STAMP))).to_bytes(_STAMP, "big")


def new_entry_id(clock: float) -> str:
    """An opaque entry id: 16 bytes as 32 lowercase hex digits, the hub's clock in
    milliseconds (6 bytes) then 10 random ones (specs/submission.md). Why the clock: the
    indexes of entry ids (the database's, the key store's) then grow at one end, so a group
    commit writes a few of their pages instead of one per entry; 80 random bits still make
    every id unguessable and unique."""
    return (_stamp(clock) + secrets.token_bytes(_ID)).hex()


def replayed_answer(record: ReplayRecord, digest: bytes) -> tuple[int, bytes]:
    """The stored answer for an identical retry; 409 for another envelope with the same nonce."""
    if record.envelope_sha256 != digest:
        raise HubError(
            409,
            "replayed_nonce",
            "this nonce was already used by a different envelope from this key; "
            "sign the request again with a fresh nonce",
        )
    return record.status, record.response


def _entries_json(entries: Sequence[NewEntry]) -> str:
    """The answer's entry list: ids and leaf hashes are lowercase hex, so they are written
    as they are (the bytes ``json.dumps`` gives, without its encoder's per-call cost)."""
    return ",".join(
        f'{{"entry_id":"{e.entry_id}","leaf_hash":"{e.leaf_hash.hex()}"}}' for e in entries
    )


def _answer(case: str, status: str, listed: str) -> bytes:
    """``{"v":1,"case_id":...,"status":...,"entries":[...]}`` in json.dumps's compact
    spelling; the case id is Crockford base32 and ``status`` a constant, nothing to escape."""
    return f'{{"v":1,"case_id":"{case}","status":"{status}","entries":[{listed}]}}'.encode()


def check_replay(
    ctx: HubContext, opened: envelope.OpenedEnvelope, digest: bytes
) -> tuple[int, bytes] | None:
    """The earlier answer if this replay key was seen (raises 409 if with other bytes)."""
    record = ctx.storage.get_replay(opened.replay_key)
    return None if record is None else replayed_answer(record, digest)


def trusted_submitter(ctx: HubContext, raw: bytes, header: str | None) -> Submitter | None:
    """The registered submitter whose valid signature over ``raw`` the request carries, or
    None without the header (the anonymous path). A header that does not verify, an unknown
    key or a revoked one is refused, never silently treated as anonymous: a helpline must
    learn at once that its key no longer counts (specs/submitter.md)."""
    if header is None:
        return None
    try:
        endorsement = Endorsement.from_header(header)
        verify_endorsement(endorsement, raw)
    except CryptoError:
        raise HubError(
            401,
            "invalid_submitter_signature",
            "the NCII-Submitter header is malformed or its signature does not verify over "
            "this envelope; sign the exact envelope bytes with the submitter key",
        ) from None
    found = None if ctx.submitters is None else ctx.submitters.by_key(endorsement.public_key)
    if found is None:
        raise HubError(
            403,
            "unknown_submitter",
            "this submitter key is not registered at this hub; ask the hub operator to run "
            "'ncii-hub submitter add', or submit without --submitter-key",
        )
    if found.revoked:
        raise HubError(
            403,
            "submitter_revoked",
            "this submitter key was revoked by the hub operator; ask them for a new "
            "registration, or submit without --submitter-key",
        )
    return found


def _admission(
    ctx: HubContext, client: str, trusted: Submitter | None, hashes: int
) -> tuple[Admit, bytes] | None:
    """The admission step for storage and the sender's bucket tag, after a cheap early
    refusal (429) of a sender this process recently held whose review allowance is used up
    (hub.admission.precheck)."""
    policy = ctx.admission
    if policy is None or not policy.enabled:
        return None
    key = ctx.admission_key
    now = ctx.clock()
    address = None if trusted is not None else address_tag(key, client)
    submitter = None
    if trusted is not None:
        submitter = (
            trusted.name,
            submitter_tag(key, trusted.name),
            trusted.bucket(policy.submitter_default),
        )
    tag = submitter[1] if submitter is not None else address
    assert tag is not None
    engine = ctx.admission_engine
    if engine is not None and tag in ctx.admission_recent:
        try:
            precheck(engine, policy, now, address=address, submitter=submitter, hashes=hashes)
        except HeldQuotaError as exc:
            raise _queue_full(exc) from None
    return admit(policy, now, address=address, submitter=submitter), tag


def _queue_full(exc: HeldQuotaError) -> HubError:
    return HubError(
        429,
        "review_queue_full",
        "this hub is holding as much from this address for review as it can; "
        "nothing was stored, try again later (see Retry-After)",
        retry_after=exc.retry_after,
    )


@dataclass(slots=True)
class Prepared:
    """A verified submission ready to store (:func:`prepare`): storage's request, the new
    entries' keys (stored first), and what its answer needs."""

    request: StoreRequest
    entry_keys: list[tuple[str, bytes]]
    digest: bytes
    algorithms: list[str]
    admission_tag: bytes | None


@dataclass(frozen=True, slots=True)
class Arrival:
    """One POST /v1/submissions to prepare: the body, the peer address (only its keyed hash
    is stored, hub.admission) and the request's headers (NCII-Submitter, NCII-Case-Puzzle;
    case-insensitive)."""

    raw: bytes
    client: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


# What preparing one submission gives: ready to store, the stored answer of an identical
# retry as (status, body), or the refusal (HubError) or failure it met.
Result = Prepared | tuple[int, bytes] | Exception


def prepare(
    ctx: HubContext, raw: bytes, client: str = "", headers: Mapping[str, str] | None = None
) -> Prepared | tuple[int, bytes]:
    """Everything of POST /v1/submissions before storage: verify, check the replay record,
    limits, puzzle and admission, and build the sealed entries. Returns the stored answer
    of an identical retry as (status, body); raises HubError for a refusal."""
    opened, digest = _open(ctx, raw)
    earlier = check_replay(ctx, opened, digest)
    if earlier is not None:
        return earlier
    return _prepare_opened(ctx, Arrival(raw, client, headers or {}), opened, digest)


def prepare_each(ctx: HubContext, arrivals: Sequence[Arrival]) -> Iterator[tuple[int, Result]]:
    """:func:`prepare` for several submissions with one read of their replay records
    (SqlStorage.get_replays): yields (position, result) for each, as soon as it is ready (a
    refusal is yielded, not raised), so that no submission waits for the others' work.

    Why: the preparing thread takes every submission waiting (hub.intakeprep); on PostgreSQL
    each read is a round trip, about 0.1 ms of this process's CPU. If that read fails (a lost
    database), each submission that opened gets an error of its own of the same kind (the
    app answers 503) without asking again: one timeout, not one per submission."""
    opened: list[tuple[int, envelope.OpenedEnvelope, bytes]] = []
    for i, arrival in enumerate(arrivals):
        try:
            opened.append((i, *_open(ctx, arrival.raw)))
        except Exception as exc:
            yield i, exc
    if not opened:
        return
    try:
        records = ctx.storage.get_replays([o.replay_key for _i, o, _d in opened])
    except Exception as exc:
        for i, _o, _d in opened:
            yield i, _own_copy(exc)
        return
    for i, o, digest in opened:
        try:
            record = records.get(o.replay_key)
            if record is not None:
                yield i, replayed_answer(record, digest)
            else:
                yield i, _prepare_opened(ctx, arrivals[i], o, digest)
        except Exception as exc:
            yield i, exc


def _own_copy(exc: Exception) -> Exception:
    """An exception like ``exc`` for one request (one object raised in many requests would
    collect every one's traceback): a database error stays one (503), anything else is a
    RuntimeError caused by it (500)."""
    if isinstance(exc, DBAPIError):
        return type(exc)(exc.statement, None, exc.orig, hide_parameters=True)  # type: ignore[arg-type]
    failure = RuntimeError("reading replay records failed; retry")
    failure.__cause__ = exc
    return failure


def _open(ctx: HubContext, raw: bytes) -> tuple[envelope.OpenedEnvelope, bytes]:
    """The verified envelope and the SHA-256 of its bytes (the replay record's check)."""
    return open_envelope(ctx, raw, envelope.Purpose.SUBMISSION), hashlib.sha256(raw).digest()


def _prepare_opened(
    ctx: HubContext, arrival: Arrival, opened: envelope.OpenedEnvelope, digest: bytes
) -> Prepared:
    """:func:`prepare` after the replay check: limits, puzzle, admission, sealed entries."""
    raw, client, headers = arrival.raw, arrival.client, arrival.headers
    case = case_id_of(opened.public_key)
    ctx.limit_case(case)
    # Who pays: a registered submitter (its signature over these bytes), else the address.
    trusted = trusted_submitter(ctx, raw, headers.get(SUBMITTER_HEADER))
    hashes = parse_submission(opened.body, ctx.limits, ctx.deny)
    if trusted is None:
        # An anonymous new case costs a solved puzzle (specs/case-puzzle.md): after the
        # replay check (a retry needs no second solution), before admission counts it
        # against the address's new-case allowance, and before storage.
        require_case_puzzle(ctx, opened.public_key, headers)
    admission = _admission(ctx, client, trusted, len(hashes))

    entries: list[NewEntry] = []
    entry_keys: list[tuple[str, bytes]] = []
    # Every entry's id, salt and key from one read of the OS CSPRNG (each slice used once).
    fresh = os.urandom(len(hashes) * _FRESH)
    stamp = _stamp(ctx.clock())
    for i, item in enumerate(hashes):
        at = i * _FRESH
        eid = (stamp + fresh[at : at + _ID]).hex()
        salt = fresh[at + _ID : at + _ID + SALT_SIZE]
        key = fresh[at + _ID + SALT_SIZE : at + _FRESH]
        body = item.entry_body()
        leaf = LeafData.for_entry(LeafKind.ADDITION, body, salt).encode()
        entries.append(NewEntry(eid, leaf, seal_entry(key, case, eid, salt, body)))
        entry_keys.append((eid, key))

    listed = _entries_json(entries)
    record = ReplayRecord(digest, 202, _answer(case, "pending", listed))
    # Only admission control holds a submission; without it the second answer is never used.
    held_record = (
        None if admission is None else ReplayRecord(digest, 202, _answer(case, "held", listed))
    )
    request = StoreRequest(
        case,
        opened.public_key,
        entries,
        opened.replay_key,
        record,
        opened.timestamp + max_age_of(ctx, envelope.Purpose.SUBMISSION) + 1,
        ctx.settings.max_entries_per_case,
        ctx.now(),
        None if admission is None else admission[0],
        held_record,
    )
    return Prepared(
        request,
        entry_keys,
        digest,
        [item.algorithm for item in hashes],
        None if admission is None else admission[1],
    )


def refused_outright(prepared: Prepared, exc: BaseException) -> bool:
    """Whether storage refused and rolled back, so that nothing of this request was stored
    and its keys must go too. Any other failure may have committed (orphans are erased at
    start, hub.erasure); a replay record that is this request's own answer means it WAS
    stored."""
    if not isinstance(exc, StorageError | HeldQuotaError):
        return False
    request = prepared.request
    return not (
        isinstance(exc, ReplayExistsError) and exc.record in (request.record, request.held_record)
    )


def store(ctx: HubContext, prepared: Prepared) -> Decision | None:
    """Store one prepared submission, waiting for its group commit (the thread-per-request
    path; the lean path groups requests in hub.intakewriter): keys first, then the rows."""
    vault = ctx.keys.vault
    vault.put_entry_keys(prepared.entry_keys)
    r = prepared.request
    try:
        return ctx.storage.submit(
            r.case_id,
            r.public_key,
            r.entries,
            r.replay_key,
            r.record,
            r.expires_at,
            r.max_entries_per_case,
            r.now,
            admit=r.admit,
            held_record=r.held_record,
        )
    except (StorageError, HeldQuotaError) as exc:
        if refused_outright(prepared, exc):
            vault.erase([eid for eid, _key in prepared.entry_keys])
        raise


def answer(
    ctx: HubContext, prepared: Prepared, outcome: Decision | BaseException | None
) -> tuple[int, bytes]:
    """The answer to a stored (or refused) submission; raises HubError for a refusal, and
    re-raises an outcome that is no refusal (a database failure: 503, anything else: 500)."""
    request = prepared.request
    tag = prepared.admission_tag
    if isinstance(outcome, ReplayExistsError):
        return replayed_answer(outcome.record, prepared.digest)
    if isinstance(outcome, HeldQuotaError):
        if tag is not None:
            ctx.admission_recent.mark(tag)
        raise _queue_full(outcome) from None
    if isinstance(outcome, CaseWithdrawnError):
        raise HubError(
            410,
            "case_withdrawn",
            "this case was withdrawn and accepts no more hashes; create a new case",
        ) from None
    if isinstance(outcome, CaseFullError):
        raise HubError(
            422,
            "case_limit",
            f"a case holds at most {ctx.settings.max_entries_per_case} entries; "
            "this request would exceed it",
        ) from None
    if isinstance(outcome, BaseException):
        raise outcome
    if outcome is not None and outcome.held:
        assert request.held_record is not None
        if tag is not None:
            ctx.admission_recent.mark(tag)
        ctx.metrics.held(len(request.entries))
        return 202, request.held_record.response
    ctx.metrics.accepted(prepared.algorithms)
    if len(request.entries) >= ctx.settings.batch_max_entries:
        ctx.wake_sequencer()
    return 202, request.record.response


def submit(
    ctx: HubContext, raw: bytes, client: str = "", headers: Mapping[str, str] | None = None
) -> tuple[int, bytes]:
    """Handle POST /v1/submissions in the calling thread; returns (status, JSON body)."""
    prepared = prepare(ctx, raw, client, headers)
    if isinstance(prepared, tuple):
        return prepared
    try:
        outcome: Decision | BaseException | None = store(ctx, prepared)
    except Exception as exc:
        outcome = exc
    return answer(ctx, prepared, outcome)
