"""Offline receipt verification for a whole case (``ncii-client receipts verify``).

No network: each receipt is checked against the log key pinned for its hub in this data folder
(client.receipts.verify_receipt). What a passing check proves: specs/client-store.md 4.
"""

from __future__ import annotations

from client.errors import StoreError
from client.receipts import ReceiptCheck, check_receipt
from client.store import ClientHome

__all__ = ["verify_receipts"]


def verify_receipts(home: ClientHome, case_id: str) -> list[ReceiptCheck]:
    """One check per receipt file of the case; a damaged file is a failed check, not a crash."""
    checks: list[ReceiptCheck] = []
    for path in home.receipt_files(case_id):
        try:
            receipt = home.load_receipt(path)
        except StoreError:
            entry = path.name.removesuffix(".json")
            checks.append(
                ReceiptCheck(entry, "unknown", None, "failed", "the receipt file is damaged")
            )
            continue
        checks.append(check_receipt(receipt, home.pin(receipt.hub)))
    return checks
