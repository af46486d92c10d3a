"""The SDK's batch decoder against specs/vectors/feed-plaintext (one case per record)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from crypto.commitment import LeafData
from crypto.merkle import leaf_hash
from partner_sdk import errors
from partner_sdk.batch import EntryRecord, decode_batch

VECTORS = Path(__file__).resolve().parents[2] / "specs" / "vectors" / "feed-plaintext"


def _cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((VECTORS / "plaintext.json").read_text())["cases"]
    return cases


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["id"])
def test_plaintext_vector(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["plaintext"])
    if "error" in case:
        with pytest.raises(getattr(errors, case["error"])):
            decode_batch(data, case["start"], case["end"])
        return
    records = decode_batch(data, case["start"], case["end"])
    assert len(records) == len(case["records"])
    for got, want in zip(records, case["records"], strict=True):
        if isinstance(got, EntryRecord):
            assert want["tag"] == "entry"
            assert (int(got.kind), got.salt.hex(), got.body.hex()) == (
                want["kind"],
                want["salt"],
                want["body"],
            )
            leaf = LeafData.for_entry(got.kind, got.body, got.salt).encode()
        else:
            assert want["tag"] == "redacted"
            assert (got.leaf_data.hex(), got.tombstone_index) == (
                want["leaf_data"],
                want["tombstone_index"],
            )
            leaf = got.leaf_data
        assert leaf_hash(leaf).hex() == want["leaf_hash"]


def test_generator_is_deterministic() -> None:
    path = VECTORS.parent / "generate_feed_plaintext.py"
    spec = importlib.util.spec_from_file_location("generate_feed_plaintext", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == (VECTORS / "plaintext.json").read_bytes()
