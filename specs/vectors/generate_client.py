"""Generate the client vectors in specs/vectors/client/ (specs/client-store.md).

Deterministic: the case secret, log key, nonces and timestamps are fixed, so running this twice
writes identical files; tests/client/test_client_vectors.py checks the files and that
regeneration is byte-identical. Each record is one case with its expected outcome: ``"ok"`` or
``"error"``, the name of the error class the reader must raise.

Usage: python specs/vectors/generate_client.py   (from the repository root)
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from client.bundle import Bundle  # noqa: E402
from client.errors import BundleFormatError  # noqa: E402
from client.plan import SubmissionPlan, SubmitLimits, seal_plan  # noqa: E402
from client.receipts import HubPin, Receipt, encode_receipt, verify_receipt  # noqa: E402
from crypto.case import CaseSecret  # noqa: E402
from crypto.checkpoint import Checkpoint, sign_checkpoint  # noqa: E402
from crypto.errors import CryptoError  # noqa: E402
from crypto.keys import signer_key_from_seed  # noqa: E402
from crypto.merkle import MemoryHashStore, inclusion_proof, leaf_hash, tree_root  # noqa: E402

OUT = Path(__file__).resolve().parent / "client"
TIMESTAMP = 1767225600
ORIGIN = "example.org/ncii-hub"
HUB = "https://example.org"


def _bytes(label: str, n: int) -> bytes:
    return hashlib.sha256(label.encode()).digest()[:n]


def _nonces(label: str) -> Any:
    counter = iter(range(1000))
    return lambda: _bytes(f"{label}/nonce/{next(counter)}", 16)


def bundles() -> dict[str, Any]:
    secret = CaseSecret(_bytes("client/case", 16))
    other = CaseSecret(_bytes("client/other-case", 16))
    hashes = (
        {"algorithm": "pdq", "hash": _bytes("pdq", 32).hex(), "quality": 100},
        {"algorithm": "md5", "hash": _bytes("md5", 16).hex()},
        {"algorithm": "sha256", "hash": _bytes("sha256", 32).hex()},
    )
    limits = SubmitLimits(max_hashes=2)
    envelopes = seal_plan(
        secret, SubmissionPlan(hashes, ()), TIMESTAMP, limits=limits, nonce=_nonces("bundle")
    )
    good = Bundle(envelopes).encode()
    stranger = seal_plan(other, SubmissionPlan(hashes[:1], ()), TIMESTAMP, nonce=_nonces("x"))
    cases = {
        "ok/two-envelopes": good,
        "error/empty": b"",
        "error/bad-magic": b"NCIIBNDX" + good[8:],
        "error/version-2": good[:8] + b"\x02" + good[9:],
        "error/zero-count": good[:9] + b"\x00\x00\x00\x00",
        "error/count-too-high": good[:9] + (10001).to_bytes(4, "big") + good[13:],
        "error/truncated": good[:-1],
        "error/trailing-byte": good + b"\x00",
        "error/length-beyond-end": good[:13] + b"\xff\xff\xff\xff" + good[17:],
        "error/signature-flipped": good[:-1] + bytes([good[-1] ^ 1]),
        "error/two-cases": Bundle([*envelopes, *stranger]).encode(),
    }
    records = []
    for name, data in cases.items():
        record: dict[str, Any] = {"id": name, "hex": data.hex()}
        try:
            bundle = Bundle.decode(data)
            record.update(
                outcome="ok",
                case_id=bundle.case_id,
                hash_count=bundle.hash_count,
                envelopes=len(bundle.envelopes),
            )
        except BundleFormatError:
            record.update(outcome="error", error="BundleFormatError")
        records.append(record)
    return {"description": "offline bundles, specs/client-store.md section 5", "cases": records}


def receipts() -> dict[str, Any]:
    key = signer_key_from_seed(ORIGIN, _bytes("client/log-key", 32))
    leaves = [leaf_hash(b"\x01\x01" + _bytes(f"leaf/{i}", 32)) for i in range(6)]
    store = MemoryHashStore.from_leaf_hashes(leaves)
    size = len(leaves)
    note = sign_checkpoint(Checkpoint(ORIGIN, size, tree_root(size, store)), [key]).decode()
    proof = [p.hex() for p in inclusion_proof(4, size, store)]
    good = Receipt(
        HUB,
        _bytes("entry/4", 16).hex(),
        "addition",
        leaves[4].hex(),
        None,
        4,
        size,
        tuple(proof),
        note,
    )
    pin = HubPin(HUB, ORIGIN, key.verifier.encode())
    other_key = signer_key_from_seed(ORIGIN, _bytes("client/other-key", 32))
    flipped = bytes.fromhex(proof[0])
    variants = {
        "ok/index-4-of-6": good,
        "error/wrong-index": Receipt(**{**_fields(good), "log_index": 5}),
        "error/wrong-leaf": Receipt(**{**_fields(good), "leaf_hash": leaves[3].hex()}),
        "error/proof-hash-flipped": Receipt(
            **{
                **_fields(good),
                "proof": ((bytes([flipped[0] ^ 1]) + flipped[1:]).hex(), *proof[1:]),
            }
        ),
        "error/proof-too-short": Receipt(**{**_fields(good), "proof": tuple(proof[:-1])}),
        "error/tree-size-differs": Receipt(**{**_fields(good), "tree_size": size + 1}),
        "error/checkpoint-by-another-key": Receipt(
            **{
                **_fields(good),
                "checkpoint": sign_checkpoint(
                    Checkpoint(ORIGIN, size, tree_root(size, store)), [other_key]
                ).decode(),
            }
        ),
        "error/pending": Receipt(HUB, good.entry_id, "addition", good.leaf_hash),
    }
    records = []
    for name, receipt in variants.items():
        record: dict[str, Any] = {"id": name, "receipt": json.loads(encode_receipt(receipt))}
        try:
            verify_receipt(receipt, pin)
            record["outcome"] = "ok"
        except CryptoError as exc:
            record.update(outcome="error", error=type(exc).__name__)
        records.append(record)
    return {
        "description": "receipt verification, specs/client-store.md section 4",
        "pin": {"url": pin.url, "origin": pin.origin, "verifier_key": pin.verifier_key},
        "cases": records,
    }


def _fields(r: Receipt) -> dict[str, Any]:
    return {s: getattr(r, s) for s in Receipt.__slots__}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, value in (("bundles", bundles()), ("receipts", receipts())):
        text = json.dumps(value, indent=1, sort_keys=True) + "\n"
        (OUT / f"{name}.json").write_text(text)


if __name__ == "__main__":
    main()
