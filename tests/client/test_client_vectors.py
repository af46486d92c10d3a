"""specs/vectors/client/: bundles and receipts, one case per record, and byte-identical
regeneration by specs/vectors/generate_client.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from client.bundle import Bundle
from client.errors import BundleFormatError
from client.receipts import HubPin, decode_receipt, verify_receipt
from crypto import errors

VECTORS = Path(__file__).resolve().parents[2] / "specs" / "vectors" / "client"


def _cases(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((VECTORS / f"{name}.json").read_text())["cases"]
    return cases


@pytest.mark.parametrize("case", _cases("bundles"), ids=lambda c: f"bundle/{c['id']}")
def test_bundle_vectors(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    if case["outcome"] == "ok":
        bundle = Bundle.decode(data)
        assert bundle.case_id == case["case_id"] and bundle.hash_count == case["hash_count"]
        assert bundle.encode() == data
    else:
        with pytest.raises(BundleFormatError):
            Bundle.decode(data)


@pytest.mark.parametrize("case", _cases("receipts"), ids=lambda c: f"receipt/{c['id']}")
def test_receipt_vectors(case: dict[str, Any]) -> None:
    pin_record = json.loads((VECTORS / "receipts.json").read_text())["pin"]
    pin = HubPin(pin_record["url"], pin_record["origin"], pin_record["verifier_key"])
    receipt = decode_receipt(json.dumps(case["receipt"]).encode())
    if case["outcome"] == "ok":
        verify_receipt(receipt, pin)
    else:
        with pytest.raises(getattr(errors, case["error"])):
            verify_receipt(receipt, pin)


def test_generator_is_deterministic(tmp_path: Path) -> None:
    before = {p.name: p.read_bytes() for p in VECTORS.glob("*.json")}
    subprocess.run([sys.executable, str(VECTORS.parent / "generate_client.py")], check=True)
    after = {p.name: p.read_bytes() for p in VECTORS.glob("*.json")}
    assert before == after and set(before) == {"bundles.json", "receipts.json"}
