"""Generate specs/vectors/submission/entries.json: request hash objects -> entry bodies and leaves.

Deterministic (fixed salts). Each record: the submitted hash object, the exact entry body bytes
(specs/submission.md section 4), a salt, the leaf data and RFC 9162 leaf hash; plus tombstones.
Run: .venv/bin/python specs/vectors/generate_submission.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from crypto.commitment import LeafData, LeafKind
from hub.submission import addition_entry, tombstone_entry

OUT = Path(__file__).parent / "submission" / "entries.json"


def _salt(i: int) -> bytes:
    return hashlib.sha256(b"ncii-exchange/vectors/submission-salt/" + str(i).encode()).digest()


def _hex(label: str, n: int) -> str:
    return hashlib.sha256(label.encode()).hexdigest()[:n]


def main() -> None:
    hashes: list[dict[str, Any]] = [
        {"hash": _hex("pdq-1", 64), "quality": 100, "algorithm": "pdq"},
        {"algorithm": "pdq", "hash": _hex("pdq-2", 64), "quality": 50},
        {"algorithm": "md5", "hash": _hex("md5", 32)},
        {"algorithm": "sha256", "hash": _hex("sha256", 64)},
        {
            "algorithm": "vpdq",
            "frames": [
                {"frame": 0, "quality": 100, "hash": _hex("f0", 64), "timestamp": 0},
                {"frame": 30, "quality": 12, "hash": _hex("f1", 64), "timestamp": 1.0},
                {"frame": 45, "quality": 99, "hash": _hex("f2", 64), "timestamp": 1.5},
            ],
        },
    ]
    records: list[dict[str, Any]] = []
    for i, item in enumerate(hashes):
        canonical = dict(item)
        if item["algorithm"] == "vpdq":
            canonical["frames"] = [dict(f, timestamp=float(f["timestamp"])) for f in item["frames"]]
        body = addition_entry(canonical)
        leaf = LeafData.for_entry(LeafKind.ADDITION, body, _salt(i)).encode()
        records.append(
            {
                "id": f"addition/{i}/{item['algorithm']}",
                "submitted": item,
                "entry": body.decode("ascii"),
                "salt": _salt(i).hex(),
                "leaf_data": leaf.hex(),
                "leaf_hash": hashlib.sha256(b"\x00" + leaf).hexdigest(),
            }
        )
    for j, index in enumerate((0, 7, 2**63 - 1)):
        body = tombstone_entry(index)
        salt = _salt(100 + j)
        leaf = LeafData.for_entry(LeafKind.TOMBSTONE, body, salt).encode()
        records.append(
            {
                "id": f"tombstone/{index}",
                "withdraws": index,
                "entry": body.decode("ascii"),
                "salt": salt.hex(),
                "leaf_data": leaf.hex(),
                "leaf_hash": hashlib.sha256(b"\x00" + leaf).hexdigest(),
            }
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"version": 1, "records": records}, indent=2) + "\n")


if __name__ == "__main__":
    main()
