"""Generate specs/vectors/feed-plaintext/plaintext.json: batch plaintexts (specs/feed.md 3).

Deterministic (salts and leaf data derived from labels with SHA-256). Each record is one case:
hex plaintext, the range the reader expects, and either the decoded records with the leaf hash
each implies, or ``"error": "MalformedBatchError"``. tests/partner/test_feed_vectors.py checks
the SDK decoder against every record and that regeneration is byte-identical.

Usage: python specs/vectors/generate_feed_plaintext.py   (from the repository root)
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from crypto.commitment import LeafData, LeafKind  # noqa: E402
from crypto.merkle import leaf_hash  # noqa: E402
from hub.feed import Redacted, Revealed, encode_plaintext  # noqa: E402

OUT = ROOT / "specs" / "vectors" / "feed-plaintext" / "plaintext.json"


def fixed(label: str) -> bytes:
    return hashlib.sha256(b"ncii-feed-plaintext-vectors/" + label.encode()).digest()


PDQ = (
    b'{"hash":{"algorithm":"pdq","hash":"'
    + b"ab" * 32
    + b'","quality":90},"kind":"addition","v":1}'
)
MD5 = b'{"hash":{"algorithm":"md5","hash":"' + b"0f" * 16 + b'"},"kind":"addition","v":1}'
TOMB = b'{"kind":"tombstone","v":1,"withdraws":256}'


def valid() -> list[dict[str, object]]:
    cases: list[dict[str, object]] = []
    redacted_leaf = LeafData.for_entry(LeafKind.ADDITION, b"withdrawn", fixed("w")).encode()
    sets: dict[str, tuple[int, list[Revealed | Redacted]]] = {
        "one-addition": (256, [Revealed(1, fixed("s0"), PDQ)]),
        "addition-redaction-tombstone": (
            256,
            [
                Revealed(1, fixed("s1"), MD5),
                Redacted(redacted_leaf, 258),
                Revealed(2, fixed("s2"), b'{"kind":"tombstone","v":1,"withdraws":257}'),
            ],
        ),
        "empty-body": (0, [Revealed(1, fixed("s3"), b"")]),
    }
    for name, (start, records) in sets.items():
        data = encode_plaintext(start, start + len(records), records)
        expected = []
        for r in records:
            if isinstance(r, Revealed):
                leaf = LeafData.for_entry(LeafKind(r.kind), r.body, r.salt).encode()
                expected.append(
                    {
                        "tag": "entry",
                        "kind": r.kind,
                        "salt": r.salt.hex(),
                        "body": r.body.hex(),
                        "leaf_hash": leaf_hash(leaf).hex(),
                    }
                )
            else:
                expected.append(
                    {
                        "tag": "redacted",
                        "leaf_data": r.leaf_data.hex(),
                        "tombstone_index": r.tombstone_index,
                        "leaf_hash": leaf_hash(r.leaf_data).hex(),
                    }
                )
        cases.append(
            {
                "id": f"valid/{name}",
                "plaintext": data.hex(),
                "start": start,
                "end": start + len(records),
                "records": expected,
            }
        )
    return cases


def invalid() -> list[dict[str, object]]:
    base = encode_plaintext(256, 257, [Revealed(1, fixed("s0"), PDQ)])
    tomb_leaf = LeafData.for_entry(LeafKind.TOMBSTONE, TOMB, fixed("t")).encode()
    bad = {
        "empty": b"",
        "bad-magic": b"NCFQ" + base[4:],
        "version-2": base[:4] + b"\x02" + base[5:],
        "start-mismatch": base[:5] + struct.pack(">Q", 255) + base[13:],
        "count-mismatch": base[:21] + struct.pack(">I", 2) + base[25:],
        "truncated-record": base[:-5],
        "trailing-byte": base + b"\x00",
        "unknown-tag": base[:25] + b"\x03" + base[26:],
        "unknown-kind": base[:26] + b"\x00" + base[27:],
        "body-length-past-end": base[:59] + struct.pack(">I", 2**32 - 1) + base[63:],
        "redacted-tombstone-leaf": encode_plaintext(256, 257, [Redacted(tomb_leaf, 300)]),
        "redacted-bad-leaf-version": encode_plaintext(
            256, 257, [Redacted(b"\x02" + tomb_leaf[1:], 300)]
        ),
    }
    return [
        {
            "id": f"invalid/{name}",
            "plaintext": data.hex(),
            "start": 256,
            "end": 257,
            "error": "MalformedBatchError",
        }
        for name, data in bad.items()
    ]


def render() -> bytes:
    doc = {
        "description": "Feed batch plaintexts, specs/feed.md section 3 (v1)",
        "cases": valid() + invalid(),
    }
    return (json.dumps(doc, indent=1) + "\n").encode()


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(render())
    print(f"wrote {OUT.relative_to(ROOT)}")
