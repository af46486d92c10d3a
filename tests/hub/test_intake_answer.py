"""The 202 answer of a submission is written by hand (hub.intake): the same bytes as
``json.dumps(..., separators=(",", ":"))``, which the stored replay record and every
client rely on."""

from __future__ import annotations

import json
import re
import secrets
import time

from crypto.case import case_id
from crypto.commitment import LeafData, LeafKind, new_salt
from hub.intake import _answer, _entries_json, new_entry_id
from hub.storage import NewEntry


def test_answer_bytes_equal_json_dumps() -> None:
    for n in (1, 2, 10):
        entries = [
            NewEntry(
                new_entry_id(time.time()),
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


def test_entry_ids_are_the_clock_then_80_random_bits() -> None:
    """Opaque to clients, but the hub's indexes of entry ids grow at one end: the first 6
    bytes are the clock in milliseconds, the other 10 random (specs/submission.md)."""
    clock = 1_765_000_000.1234
    ids = {new_entry_id(clock) for _ in range(1000)}
    assert len(ids) == 1000
    for eid in ids:
        assert re.fullmatch(r"[0-9a-f]{32}", eid)
        assert int(eid[:12], 16) == 1_765_000_000_123
    assert len({eid[12:] for eid in ids}) == 1000
    assert min(new_entry_id(clock + 0.002) for _ in range(100)) > max(ids)
