"""Receipts: the hub's signed promise that an entry is in its log, kept and checked offline.

A receipt holds what the hub said at submission (entry id, RFC 9162 leaf hash) and, once the
entry is integrated, an inclusion proof against a signed checkpoint. Verification needs no
network: the checkpoint signature is checked with the log key pinned at first contact, then
the proof with crypto.merkle. What this proves and what it cannot: specs/client-store.md 4.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from crypto import boundedjson
from crypto.checkpoint import open_checkpoint
from crypto.errors import CryptoError, MalformedError
from crypto.keys import parse_verifier_key
from crypto.merkle import verify_inclusion

__all__ = [
    "MAX_PROOF_LENGTH",
    "HubPin",
    "Receipt",
    "ReceiptCheck",
    "decode_receipt",
    "encode_receipt",
    "verify_receipt",
]

MAX_PROOF_LENGTH = 64  # a tree of 2^64 leaves needs at most 64 hashes
MAX_RECEIPT_BYTES = 1 << 20  # a receipt with a 64-hash proof and 32 cosignatures is ~10 kB
_ENTRY_ID = re.compile(r"[0-9a-f]{32}")
_HASH = re.compile(r"[0-9a-f]{64}")
_KINDS = ("addition", "tombstone")


@dataclass(frozen=True, slots=True)
class HubPin:
    """A hub's log identity as first seen (trust on first use): origin and verifier key."""

    url: str
    origin: str
    verifier_key: str


@dataclass(frozen=True, slots=True)
class Receipt:
    """One entry of a case in one hub's log. ``checkpoint`` is None while still pending."""

    hub: str
    entry_id: str
    kind: str  # "addition" | "tombstone"
    leaf_hash: str | None  # tombstones of a whole-case withdrawal learn theirs from status
    withdraws: str | None = None
    log_index: int | None = None
    tree_size: int | None = None
    proof: tuple[str, ...] | None = None
    checkpoint: str | None = None

    @property
    def included(self) -> bool:
        """True once a proof and checkpoint are stored (not yet verified)."""
        return self.checkpoint is not None

    def with_proof(
        self, leaf_hash: str, log_index: int, tree_size: int, proof: list[str], checkpoint: str
    ) -> Receipt:
        """This receipt completed with an inclusion proof."""
        return replace(
            self,
            leaf_hash=leaf_hash,
            log_index=log_index,
            tree_size=tree_size,
            proof=tuple(proof),
            checkpoint=checkpoint,
        )


@dataclass(frozen=True, slots=True)
class ReceiptCheck:
    """The outcome of checking one receipt offline; ``problem`` says why it failed, for people."""

    entry_id: str
    kind: str
    log_index: int | None
    state: str  # "verified" | "pending" | "failed"
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when the receipt verified (pending receipts are not failures, but not ok)."""
        return self.state == "verified"


def encode_receipt(receipt: Receipt) -> bytes:
    """The receipt file's bytes (specs/client-store.md 3.3)."""
    record: dict[str, Any] = {
        "v": 1,
        "hub": receipt.hub,
        "entry_id": receipt.entry_id,
        "kind": receipt.kind,
        "leaf_hash": receipt.leaf_hash,
        "withdraws": receipt.withdraws,
        "log_index": receipt.log_index,
        "tree_size": receipt.tree_size,
        "proof": list(receipt.proof) if receipt.proof is not None else None,
        "checkpoint": receipt.checkpoint,
    }
    return (json.dumps(record, indent=1, ensure_ascii=True) + "\n").encode("ascii")


def _opt(value: object, check: Any, what: str) -> Any:
    if value is None:
        return None
    return check(value, what)


def _hex(value: object, what: str, pattern: re.Pattern[str] = _HASH) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise MalformedError(f"receipt field {what} is not valid hex")
    return value


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise MalformedError(f"receipt field {what} is not a valid number")
    return value


def _str(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 100_000:
        raise MalformedError(f"receipt field {what} is not valid text")
    return value


def decode_receipt(data: bytes) -> Receipt:
    """Parse a receipt file strictly; anything odd raises MalformedError (a damaged file)."""
    try:
        record = boundedjson.loads(data, max_bytes=MAX_RECEIPT_BYTES)
    except boundedjson.JsonBoundsError:
        raise MalformedError("receipt file is not valid JSON (or far too large or deep)") from None
    fields = {
        "v", "hub", "entry_id", "kind", "leaf_hash", "withdraws",
        "log_index", "tree_size", "proof", "checkpoint",
    }  # fmt: skip
    if not isinstance(record, dict) or set(record) != fields or record["v"] != 1:
        raise MalformedError("receipt file does not have the version 1 fields")
    kind = record["kind"]
    if kind not in _KINDS:
        raise MalformedError("receipt kind must be addition or tombstone")
    proof = record["proof"]
    if proof is not None:
        if not isinstance(proof, list) or len(proof) > MAX_PROOF_LENGTH:
            raise MalformedError("receipt proof must be a list of at most 64 hashes")
        proof = tuple(_hex(p, "proof") for p in proof)
    receipt = Receipt(
        hub=_str(record["hub"], "hub"),
        entry_id=_hex(record["entry_id"], "entry_id", _ENTRY_ID),
        kind=kind,
        leaf_hash=_opt(record["leaf_hash"], _hex, "leaf_hash"),
        withdraws=_opt(record["withdraws"], lambda v, w: _hex(v, w, _ENTRY_ID), "withdraws"),
        log_index=_opt(record["log_index"], _int, "log_index"),
        tree_size=_opt(record["tree_size"], _int, "tree_size"),
        proof=proof,
        checkpoint=_opt(record["checkpoint"], _str, "checkpoint"),
    )
    complete = (receipt.log_index, receipt.tree_size, receipt.proof, receipt.checkpoint)
    if any(v is None for v in complete) and any(v is not None for v in complete):
        raise MalformedError("receipt has a partial proof")
    if receipt.checkpoint is not None and receipt.leaf_hash is None:
        raise MalformedError("receipt has a proof but no leaf hash")
    return receipt


def verify_receipt(receipt: Receipt, pin: HubPin) -> None:
    """Check one complete receipt offline against the pinned log key; raise on any failure.

    Raises CryptoError subclasses: InvalidSignatureError / NoKnownSignatureError (checkpoint not
    signed by the pinned key), WrongPurposeError (another log), InvalidProofError (the leaf is
    not in the signed tree at that index), MalformedError (a damaged receipt).
    """
    if receipt.checkpoint is None or receipt.leaf_hash is None:
        raise MalformedError("receipt is still pending: no proof to check")
    assert receipt.log_index is not None and receipt.tree_size is not None
    assert receipt.proof is not None
    key = parse_verifier_key(pin.verifier_key)
    signed = open_checkpoint(receipt.checkpoint.encode("utf-8"), [key], origin=pin.origin)
    if signed.checkpoint.size != receipt.tree_size:
        raise MalformedError("receipt tree size differs from its checkpoint's size")
    verify_inclusion(
        bytes.fromhex(receipt.leaf_hash),
        receipt.log_index,
        receipt.tree_size,
        [bytes.fromhex(p) for p in receipt.proof],
        signed.checkpoint.root_hash,
    )


def check_receipt(receipt: Receipt, pin: HubPin | None) -> ReceiptCheck:
    """Verify one receipt and describe the outcome for a person instead of raising."""

    def result(state: str, problem: str | None = None) -> ReceiptCheck:
        return ReceiptCheck(receipt.entry_id, receipt.kind, receipt.log_index, state, problem)

    if not receipt.included:
        return result("pending")
    if pin is None:
        return result("failed", "no log key is recorded for this hub in this data folder")
    try:
        verify_receipt(receipt, pin)
    except CryptoError as exc:
        return result("failed", _explain(exc))
    return result("verified")


def _explain(exc: CryptoError) -> str:
    from crypto.errors import (
        InvalidProofError,
        InvalidSignatureError,
        NoKnownSignatureError,
        WrongPurposeError,
    )

    if isinstance(exc, InvalidSignatureError | NoKnownSignatureError):
        return "the checkpoint is not signed by the hub's log key recorded at first contact"
    if isinstance(exc, WrongPurposeError):
        return "the checkpoint belongs to another log"
    if isinstance(exc, InvalidProofError):
        return "the inclusion proof does not match the signed checkpoint"
    return "the receipt is damaged or incomplete"
