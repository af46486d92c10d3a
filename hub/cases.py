"""Status and withdrawal: signed requests by the case key (specs/hub-api.md 3.2, 3.3).

Status answers only what this case sent (its own hashes, decrypted for it) plus where each
entry sits in the log. Withdrawal appends tombstones, then erases, before answering 202, the key
of every withdrawn entry and of every sealed feed batch still revealing one (hub.vault): after
that no ciphertext copy anywhere (database pages, WAL, backups, old batch files) opens.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from typing import Any

from crypto import envelope
from crypto.case import case_id as case_id_of
from crypto.commitment import LeafKind
from crypto.errors import CryptoError
from hub.atrest import open_entry
from hub.context import HubContext, open_envelope
from hub.errors import HubError
from hub.intake import check_replay, new_entry_id, replayed_answer
from hub.storage import ReplayExistsError, ReplayRecord, UnknownEntryError, WithdrawResult
from hub.submission import parse_status, parse_withdrawal
from hub.vault import VaultError

__all__ = ["status", "withdraw"]


def _dump(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def status(ctx: HubContext, raw: bytes) -> tuple[int, bytes]:
    """Handle POST /v1/status."""
    opened = open_envelope(ctx, raw, envelope.Purpose.STATUS_QUERY)
    case = case_id_of(opened.public_key)
    ctx.limit_case(case)
    parse_status(opened.body)
    info = ctx.storage.get_case(case)
    if info is None:
        raise HubError(
            404, "unknown_case", "the hub holds nothing for this case key (nothing submitted yet)"
        )
    published = ctx.storage.load_log_state().published_size
    stored = ctx.storage.case_entries(case)
    held = ctx.storage.held_entries(case)
    entry_keys = ctx.keys.vault.entry_keys(
        [e.entry_id for e in stored if e.kind == LeafKind.ADDITION and e.withdrawn_by is None]
        + [h.entry_id for h in held if h.state == "held"]
    )
    # How many partners acknowledged a feed position past each entry (a count, never which).
    acked = ctx.acked_positions()
    entries: list[dict[str, Any]] = []
    for e in stored:
        integrated = e.log_index is not None and e.log_index < published
        item: dict[str, Any] = {
            "entry_id": e.entry_id,
            "kind": "addition" if e.kind == LeafKind.ADDITION else "tombstone",
            "state": "integrated" if integrated else "pending",
            "log_index": e.log_index if integrated else None,
            "leaf_hash": e.leaf_hash.hex() if e.leaf_hash is not None else None,
            "partners_received": (
                len(acked) - bisect.bisect_right(acked, e.log_index)
                if integrated and e.log_index is not None
                else 0
            ),
        }
        if e.kind == LeafKind.ADDITION:
            item["withdrawn"] = e.withdrawn_by is not None
            item["withdrawn_by"] = e.withdrawn_by
            key = entry_keys.get(e.entry_id)
            if key is not None and e.ciphertext is not None and e.withdrawn_by is None:
                try:
                    _salt, body = open_entry(key, case, e.entry_id, e.ciphertext)
                    item["hash"] = json.loads(body)["hash"]
                except (CryptoError, ValueError, KeyError):
                    raise HubError(
                        500, "internal_error", "a stored entry could not be read"
                    ) from None
        else:
            item["withdraws"] = e.withdraws
        entries.append(item)
    for h in held:
        # Held for review (hub/review.py): not in the log, not sent to partners; "rejected"
        # after an operator's review (its keys erased, as for a withdrawal).
        item = {
            "entry_id": h.entry_id,
            "kind": "addition",
            "state": "rejected" if h.state == "rejected" else "held",
            "log_index": None,
            "leaf_hash": h.leaf_hash.hex(),
            "partners_received": 0,
            "withdrawn": h.state == "withdrawn",
            "withdrawn_by": None,
        }
        key = entry_keys.get(h.entry_id)
        if key is not None and h.ciphertext is not None and h.state == "held":
            try:
                _salt, body = open_entry(key, case, h.entry_id, h.ciphertext)
                item["hash"] = json.loads(body)["hash"]
            except (CryptoError, ValueError, KeyError):
                raise HubError(500, "internal_error", "a stored entry could not be read") from None
        entries.append(item)
    answer = {
        "v": 1,
        "case_id": case,
        "withdrawn": info.withdrawn,
        "checkpoint_size": published,
        "entries": entries,
    }
    # Single use: a captured query replayed within its window must not return the hash values
    # again. Claimed last, so a refusal or an outage above does not use the query up; the
    # record keeps only the envelope's digest, never the answer.
    try:
        ctx.storage.claim_replay(
            opened.replay_key,
            ReplayRecord(hashlib.sha256(raw).digest(), 200, b""),
            opened.timestamp + ctx.settings.window_seconds + 1,
        )
    except ReplayExistsError:
        raise HubError(
            409,
            "replayed_query",
            "this signed status query was already answered; a status query is single-use: "
            "sign a new one",
        ) from None
    return 200, _dump(answer)


def withdraw(ctx: HubContext, raw: bytes) -> tuple[int, bytes]:
    """Handle POST /v1/withdrawals; 202 once tombstones are durably pending and the keys of
    everything withdrawn are erased (a retry of the same envelope erases again)."""
    opened = open_envelope(ctx, raw, envelope.Purpose.WITHDRAWAL)
    digest = hashlib.sha256(raw).digest()
    earlier = check_replay(ctx, opened, digest)
    case = case_id_of(opened.public_key)
    if earlier is not None:
        if earlier[0] == 202:
            erase_withdrawn(ctx, case)  # the retry after a 503 erasure_pending
        return earlier
    ctx.limit_case(case)
    ids = parse_withdrawal(opened.body, ctx.limits)

    def respond(result: WithdrawResult) -> ReplayRecord:
        body = {
            "v": 1,
            "case_id": case,
            "status": "pending",
            "case_withdrawn": result.case_withdrawn,
            "withdrawn": [{"entry_id": t, "tombstone_id": s} for t, s in result.withdrawn],
            "already_withdrawn": result.already,
            # held for review, never logged: withdrawn without a tombstone (keys erased)
            "held_withdrawn": result.held,
        }
        return ReplayRecord(digest, 202, _dump(body))

    try:
        record = ctx.storage.withdraw(
            case,
            ids,
            lambda: new_entry_id(ctx.clock()),
            respond,
            opened.replay_key,
            opened.timestamp + ctx.settings.window_seconds + 1,
            ctx.now(),
        )
    except ReplayExistsError as exc:
        erase_withdrawn(ctx, case)
        return replayed_answer(exc.record, digest)
    except UnknownEntryError:
        raise HubError(
            404,
            "unknown_entry",
            "this case has no such entry (check the entry ids from the submission receipt)",
        ) from None
    erase_withdrawn(ctx, case)
    ctx.wake_sequencer()
    return record.status, record.response


def erase_withdrawn(ctx: HubContext, case: str) -> None:
    """Erase the keys of every withdrawn entry of ``case`` and of the feed batches still
    revealing one; idempotent. A failure (key store busy) fails the request: the client
    retries the same envelope, and the next start erases anyway (hub.erasure.reconcile)."""
    targets = ctx.storage.erasure_targets(case)
    try:
        ctx.keys.vault.erase(targets.entry_ids, targets.batches)
    except VaultError:
        raise HubError(
            503,
            "erasure_pending",
            "the withdrawal is recorded but its keys are not erased yet; send the same "
            "request again",
            retry_after=1,
        ) from None
