"""Submissions: verify, validate, store durably, then answer 202 (specs/hub-api.md 3.1).

Order matters: the signature is checked over the exact bytes before the body is parsed; the
replay record is stored in the same transaction as the entries, so a retry gets the same answer
and nothing is stored twice. Each entry gets its own key, written to the key store (hub.vault)
before the ciphertext reaches the database, and erased again if the database refuses.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence

from crypto import envelope
from crypto.case import case_id as case_id_of
from crypto.commitment import LeafData, LeafKind, new_salt
from hub.atrest import new_entry_key, seal_entry
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
)
from hub.submission import parse_submission

__all__ = ["check_replay", "new_entry_id", "replayed_answer", "submit"]


def new_entry_id() -> str:
    """A random, opaque entry id: 16 bytes as 32 lowercase hex digits."""
    return secrets.token_hex(16)


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


def check_replay(
    ctx: HubContext, opened: envelope.OpenedEnvelope, digest: bytes
) -> tuple[int, bytes] | None:
    """The earlier answer if this replay key was seen (raises 409 if with other bytes)."""
    record = ctx.storage.get_replay(opened.replay_key)
    return None if record is None else replayed_answer(record, digest)


def submit(
    ctx: HubContext, raw: bytes, headers: Mapping[str, str] | None = None
) -> tuple[int, bytes]:
    """Handle POST /v1/submissions; returns (status, JSON body). ``headers`` are the
    request's (the case puzzle solution travels in one)."""
    opened = open_envelope(ctx, raw, envelope.Purpose.SUBMISSION)
    digest = hashlib.sha256(raw).digest()
    earlier = check_replay(ctx, opened, digest)
    if earlier is not None:
        return earlier
    case = case_id_of(opened.public_key)
    ctx.limit_case(case)
    hashes = parse_submission(opened.body, ctx.limits, ctx.deny)
    # A new case costs a solved puzzle (specs/case-puzzle.md); trusted submitters (issue 13
    # item 2) will skip this call. After the replay check (a retry needs no second solution)
    # and before storage.
    require_case_puzzle(ctx, opened.public_key, headers or {})

    prepared: list[tuple[str, bytes, bytes, bytes]] = []  # id, body, salt, leaf data
    for item in hashes:
        body = item.entry_body()
        salt = new_salt()
        leaf = LeafData.for_entry(LeafKind.ADDITION, body, salt).encode()
        prepared.append((new_entry_id(), body, salt, leaf))
    entry_keys = [(eid, new_entry_key()) for eid, _body, _salt, _leaf in prepared]
    entries: Sequence[NewEntry] = [
        NewEntry(eid, leaf, seal_entry(key, case, eid, salt, body))
        for (eid, body, salt, leaf), (_eid, key) in zip(prepared, entry_keys, strict=True)
    ]

    response = json.dumps(
        {
            "v": 1,
            "case_id": case,
            "status": "pending",
            "entries": [
                {"entry_id": eid, "leaf_hash": hashlib.sha256(b"\x00" + leaf).hexdigest()}
                for eid, _body, _salt, leaf in prepared
            ],
        },
        separators=(",", ":"),
    ).encode()
    record = ReplayRecord(digest, 202, response)
    now = ctx.now()
    vault = ctx.keys.vault
    vault.put_entry_keys(entry_keys)
    try:
        try:
            ctx.storage.submit(
                case,
                opened.public_key,
                entries,
                opened.replay_key,
                record,
                opened.timestamp + max_age_of(ctx, envelope.Purpose.SUBMISSION) + 1,
                ctx.settings.max_entries_per_case,
                now,
            )
        except StorageError:
            # Refused and rolled back: nothing of this request was stored, so its keys go too.
            # (Any other failure may have committed; orphans are erased at start, hub.erasure.)
            vault.erase([eid for eid, _key in entry_keys])
            raise
    except ReplayExistsError as exc:
        return replayed_answer(exc.record, digest)
    except CaseWithdrawnError:
        raise HubError(
            410,
            "case_withdrawn",
            "this case was withdrawn and accepts no more hashes; create a new case",
        ) from None
    except CaseFullError:
        raise HubError(
            422,
            "case_limit",
            f"a case holds at most {ctx.settings.max_entries_per_case} entries; "
            "this request would exceed it",
        ) from None
    if len(prepared) >= ctx.settings.batch_max_entries:
        ctx.wake_sequencer()
    return 202, response
