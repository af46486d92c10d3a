"""The 202 answer of a submission is written by hand (hub.intake): the same bytes as
``json.dumps(..., separators=(",", ":"))``, which the stored replay record and every
client rely on."""

from __future__ import annotations

import json
import secrets

from crypto.case import case_id
from crypto.commitment import LeafData, LeafKind, new_salt
from hub.intake import _answer, _entries_json, new_entry_id
from hub.storage import NewEntry


def test_answer_bytes_equal_json_dumps() -> None:
    for n in (1, 2, 10):
        entries = [
            NewEntry(
                new_entry_id(),
                LeafData.for_entry(LeafKind.ADDITION, secrets.token_bytes(40), new_salt()).encode(),
                b"sealed",
            )
            for _ in range(n)
        ]
        case = case_id(secrets.token_bytes(32))
        for status in ("pending", "held"):
            expected = json.dumps(
                {
                    "v": 1,
                    "case_id": case,
                    "status": status,
                    "entries": [
                        {"entry_id": e.entry_id, "leaf_hash": e.leaf_hash.hex()} for e in entries
                    ],
                },
                separators=(",", ":"),
            ).encode()
            assert _answer(case, status, _entries_json(entries)) == expected
