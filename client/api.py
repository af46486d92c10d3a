"""The client library's public API: what the CLI and the local web page (client/ui) call.

Documented in client/README.md. Nothing here prints or reads the terminal; progress is a
callback and every deliberate failure is a client.errors.ClientError with a message for people.
"""

from __future__ import annotations

from client.bundle import Bundle
from client.errors import (
    AmbiguousCaseError,
    BundleFormatError,
    ClientError,
    HubAnswerTooLargeError,
    HubKeyChangedError,
    HubProtocolError,
    HubRefusedError,
    HubUnreachableError,
    InsecureHubError,
    NoCaseError,
    NothingToSendError,
    StoreError,
    UnknownCaseError,
    UsageError,
)
from client.hub import (
    CaseStatus,
    EntryRef,
    EntryStatus,
    HubInfo,
    HubSession,
    ReceiptSummary,
    SubmitResult,
    WithdrawOutcome,
    check_hub_address,
)
from client.plan import (
    FileReport,
    HashReport,
    SubmissionPlan,
    SubmitLimits,
    hash_paths,
    plan_submission,
    seal_plan,
)
from client.receipts import HubPin, Receipt, ReceiptCheck
from client.store import CaseSummary, ClientHome, NewCase, default_home, normalise_hub_url
from client.verify import verify_receipts

__all__ = [
    "AmbiguousCaseError",
    "Bundle",
    "BundleFormatError",
    "CaseStatus",
    "CaseSummary",
    "ClientError",
    "ClientHome",
    "EntryRef",
    "EntryStatus",
    "FileReport",
    "HashReport",
    "HubAnswerTooLargeError",
    "HubInfo",
    "HubKeyChangedError",
    "HubPin",
    "HubProtocolError",
    "HubRefusedError",
    "HubSession",
    "HubUnreachableError",
    "InsecureHubError",
    "NewCase",
    "NoCaseError",
    "NothingToSendError",
    "Receipt",
    "ReceiptCheck",
    "ReceiptSummary",
    "StoreError",
    "SubmissionPlan",
    "SubmitLimits",
    "SubmitResult",
    "UnknownCaseError",
    "UsageError",
    "WithdrawOutcome",
    "check_hub_address",
    "default_home",
    "hash_paths",
    "normalise_hub_url",
    "plan_submission",
    "seal_plan",
    "verify_receipts",
]
