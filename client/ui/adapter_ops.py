"""A stand-alone :class:`~client.ui.ops.CaseOps`: case secrets held in memory, hubops for HTTP.

Used when the client library (``client.api``) is not importable, and by unit tests that need no
data folder. The person keeps their case through the recovery code the page shows.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from client.ui.hubops import HubClient, HubError
from client.ui.ops import NewCaseView, OpsError, StatusView, status_from_hub
from crypto.case import CaseSecret
from crypto.errors import CryptoError, RecoveryCodeError

__all__ = ["MemoryOps"]


class MemoryOps:
    """Cases for this run of the page only; nothing is written to disk."""

    def __init__(self, hub: HubClient) -> None:
        self._hub = hub
        self._secrets: dict[str, CaseSecret] = {}
        self._lock = threading.Lock()

    def _secret(self, case_id: str) -> CaseSecret:
        with self._lock:
            secret = self._secrets.get(case_id)
        if secret is None:
            raise OpsError("unknown_case", "This case is not open here. Enter its recovery code.")
        return secret

    def create_case(self) -> NewCaseView:
        secret = CaseSecret.generate()
        with self._lock:
            self._secrets[secret.case_id()] = secret
        return NewCaseView(secret.case_id(), secret.recovery_code())

    def recover_case(self, code: str) -> str:
        try:
            secret = CaseSecret.from_recovery_code(code)
        except RecoveryCodeError as exc:
            raise OpsError("bad_code", _typo_message(exc.group)) from None
        except CryptoError:
            raise OpsError("bad_code", _typo_message(None)) from None
        with self._lock:
            self._secrets[secret.case_id()] = secret
        return secret.case_id()

    def submit(self, case_id: str, hashes: Sequence[dict[str, Any]]) -> int:
        try:
            return len(self._hub.submit(self._secret(case_id), hashes))
        except HubError as exc:
            raise OpsError(exc.code, str(exc)) from None

    def status(self, case_id: str) -> StatusView:
        try:
            return status_from_hub(self._hub.status(self._secret(case_id)))
        except HubError as exc:
            raise OpsError(exc.code, str(exc)) from None

    def withdraw_all(self, case_id: str) -> StatusView:
        secret = self._secret(case_id)
        try:
            self._hub.withdraw(secret, None)
            return status_from_hub(self._hub.status(secret))
        except HubError as exc:
            raise OpsError(exc.code, str(exc)) from None


def _typo_message(group: int | None) -> str:
    if group is None:
        return "This recovery code is not right. Check each character and try again."
    return (
        f"This recovery code has a typing mistake in group {group} (counting the groups of "
        "four characters from the left). Check that group and try again."
    )
