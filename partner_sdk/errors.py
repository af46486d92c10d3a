"""Typed failures of the partner SDK; each carries the CLI exit status for its class.

Why a tree: a platform's scheduler must tell "the hub lied or the data is corrupt" (alert a
person, keep the last good state) from "the hub is down" (retry later) from "we were revoked"
(talk to the operator). Tests assert classes, never messages (specs/partner-store.md 5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from partner_sdk.sync import SyncSummary

__all__ = [
    "BatchDecryptionError",
    "CheckpointForkError",
    "CheckpointSignatureError",
    "FeedLagError",
    "HubAnswerTooLargeError",
    "HubProtocolError",
    "HubRefusedError",
    "HubUnreachableError",
    "LeafMismatchError",
    "MalformedBatchError",
    "MissingRangeError",
    "PartnerError",
    "RedactionError",
    "StoreError",
    "UsageError",
    "VerificationFailure",
    "WitnessQuorumError",
]


class PartnerError(Exception):
    """Base of every SDK failure; ``exit_code`` is what ``ncii-partner`` exits with."""

    exit_code = 1


class VerificationFailure(PartnerError):
    """What the hub sent does not verify: nothing of it was applied (exit 1)."""

    exit_code = 1


class CheckpointSignatureError(VerificationFailure):
    """The checkpoint is not signed by the pinned log key, or is for another log."""


class CheckpointForkError(VerificationFailure):
    """The checkpoint is not consistent with the last trusted one (fork or rollback)."""


class BatchDecryptionError(VerificationFailure):
    """A wrap or sealed batch does not open for this partner, origin and range."""


class MalformedBatchError(VerificationFailure):
    """A decrypted batch or an entry body breaks specs/feed.md or specs/submission.md."""


class LeafMismatchError(VerificationFailure):
    """A batch's entries do not recompute the log's leaves for exactly its range."""


class MissingRangeError(VerificationFailure):
    """Batches are not contiguous from the cursor (a range was withheld or reordered)."""


class RedactionError(VerificationFailure):
    """A redaction or tombstone is not backed by the verified log."""


class WitnessQuorumError(VerificationFailure):
    """Fewer configured witnesses cosigned the checkpoint than the quorum requires.

    ``missing`` names the configured witnesses (their key names) without a valid cosignature
    on the newest checkpoint: down, behind, or refusing it (a fork). Nothing was applied.
    """

    def __init__(self, have: int, need: int, missing: tuple[str, ...]) -> None:
        super().__init__(
            f"the checkpoint has {have} of the {need} witness cosignatures required; "
            f"missing: {', '.join(missing) or '-'}"
        )
        self.have = have
        self.need = need
        self.missing = missing


class HubProtocolError(VerificationFailure):
    """The hub answered something that is not the documented API (specs/partner-api.md)."""


class HubAnswerTooLargeError(HubProtocolError):
    """A hub answer exceeded its size cap: reading stopped at the cap (nothing applied)."""


class FeedLagError(VerificationFailure):
    """The feed has lagged the verified checkpoint for longer than the grace period.

    Everything delivered was verified and applied; the hub withholds (or has long failed to
    seal) verified entries from this partner. ``summary`` is the sync's SyncSummary.
    """

    def __init__(self, message: str, summary: SyncSummary) -> None:
        super().__init__(message)
        self.summary = summary


class UsageError(PartnerError):
    """Bad arguments, missing or unreadable keys, a store that follows another log (exit 2)."""

    exit_code = 2


class HubUnreachableError(PartnerError):
    """Network failure or a 5xx answer: retry later (exit 3)."""

    exit_code = 3


class HubRefusedError(PartnerError):
    """The hub refused the partner (401/403/409...): ``code`` is the hub's error code (exit 4)."""

    exit_code = 4

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"hub refused the request ({status} {code}): {message}")
        self.status = status
        self.code = code


class StoreError(PartnerError):
    """The local store cannot be opened or written (exit 5)."""

    exit_code = 5
