"""Generate specs/vectors/witness-protocol/cases.json: C2SP tlog-witness bodies, good and bad.

Deterministic: the log and witness keys come from seeds SHA-256("ncii-vectors/witness/" +
label), leaves from fixed labels, the cosignature timestamp is fixed, and Ed25519 signing is
deterministic. Each record is one case: ``id``, ``op`` (``parse_add_checkpoint``,
``parse_size_body``, ``parse_cosignature_response``, ``encode_add_checkpoint``,
``attach_signatures``), the input bytes in ``*_b64`` fields (standard base64, so invalid
UTF-8 survives) and ``expect``: ``"ok"`` with the decoded result, or the crypto.errors class
the operation must raise. tests/test_witness_protocol.py replays every record and checks that
regeneration is byte-identical.

Usage: .venv/bin/python specs/vectors/generate_witness_protocol.py   (from anywhere)
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from crypto.checkpoint import Checkpoint, sign_checkpoint  # noqa: E402
from crypto.cosignature import cosign_checkpoint  # noqa: E402
from crypto.keys import ALG_COSIGNATURE_V1, signer_key_from_seed  # noqa: E402
from crypto.merkle import MemoryHashStore, consistency_proof, leaf_hash, tree_root  # noqa: E402

OUT = Path(__file__).resolve().parent / "witness-protocol" / "cases.json"
TS = 1767225600  # 2026-01-01T00:00:00Z


def seed(label: str) -> bytes:
    return hashlib.sha256(b"ncii-vectors/witness/" + label.encode()).digest()


LOG = signer_key_from_seed("log.example.org/ncii", seed("log"))
W1 = signer_key_from_seed("witness1.example.com", seed("w1"), ALG_COSIGNATURE_V1)
W2 = signer_key_from_seed("witness2.example.com", seed("w2"), ALG_COSIGNATURE_V1)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def build() -> list[dict[str, Any]]:
    store = MemoryHashStore.from_leaf_hashes([leaf_hash(f"entry {i}".encode()) for i in range(20)])
    note20 = sign_checkpoint(Checkpoint(LOG.name, 20, tree_root(20, store)), [LOG])
    cp20 = Checkpoint(LOG.name, 20, tree_root(20, store))
    proof = consistency_proof(7, 20, store)
    proof_lines = b"".join(base64.b64encode(h) + b"\n" for h in proof)
    good = b"old 7\n" + proof_lines + b"\n" + note20
    line1 = cosign_checkpoint(cp20, W1, timestamp=TS)
    line2 = cosign_checkpoint(cp20, W2, timestamp=TS + 5)
    cases: list[dict[str, Any]] = []

    def request(case_id: str, body: bytes, expect: str) -> None:
        record: dict[str, Any] = {
            "id": f"request/{case_id}",
            "op": "parse_add_checkpoint",
            "body_b64": b64(body),
            "expect": expect,
        }
        if expect == "ok":
            head, _, note = body.partition(b"\n\n")
            lines = head.split(b"\n")
            record["old_size"] = int(lines[0][4:])
            record["proof"] = [base64.b64decode(x).hex() for x in lines[1:]]
            record["note_b64"] = b64(note)
        cases.append(record)

    request("with-proof", good, "ok")
    request("from-zero", b"old 0\n\n" + note20, "ok")
    request("equal-sizes", b"old 20\n\n" + note20, "ok")
    request("max-old", b"old 9223372036854775807\n\n" + note20, "ok")
    request("old-above-2^63-1", b"old 9223372036854775808\n\n" + note20, "LimitExceededError")
    request("leading-zero", b"old 07\n" + proof_lines + b"\n" + note20, "MalformedError")
    request("negative", b"old -7\n\n" + note20, "MalformedError")
    request("two-spaces", b"old  7\n\n" + note20, "MalformedError")
    request("no-old-line", proof_lines + b"\n" + note20, "MalformedError")
    request("uppercase-old", b"OLD 7\n\n" + note20, "MalformedError")
    request("no-empty-line", b"old 7\n" + proof_lines, "MalformedError")
    request("no-checkpoint", b"old 7\n" + proof_lines + b"\n", "MalformedError")
    request("empty", b"", "MalformedError")
    request("crlf", b"old 7\r\n\r\n" + note20, "MalformedError")
    short = base64.b64encode(b"\x00" * 31) + b"\n"
    request("proof-31-bytes", b"old 7\n" + short + b"\n" + note20, "MalformedError")
    unpadded = base64.b64encode(proof[0]).rstrip(b"=") + b"\n"
    request("proof-unpadded", b"old 7\n" + unpadded + b"\n" + note20, "MalformedError")
    request("proof-url-safe", b"old 7\n" + b"_" * 43 + b"=\n\n" + note20, "MalformedError")
    request("proof-non-ascii", b"old 7\n\xff\xfe\n\n" + note20, "MalformedError")
    many = (base64.b64encode(b"\x01" * 32) + b"\n") * 64
    request("64-proof-lines", b"old 7\n" + many + b"\n" + note20, "LimitExceededError")
    request("63-proof-lines", b"old 7\n" + many[: 63 * 45] + b"\n" + note20, "ok")

    def size(case_id: str, body: bytes, expect: str, value: int | None = None) -> None:
        record: dict[str, Any] = {
            "id": f"size/{case_id}",
            "op": "parse_size_body",
            "body_b64": b64(body),
            "expect": expect,
        }
        if value is not None:
            record["size"] = value
        cases.append(record)

    size("zero", b"0\n", "ok", 0)
    size("twenty", b"20\n", "ok", 20)
    size("max", b"9223372036854775807\n", "ok", 2**63 - 1)
    size("above-max", b"9223372036854775808\n", "LimitExceededError")
    size("huge", b"9" * 40 + b"\n", "LimitExceededError")
    size("no-newline", b"20", "MalformedError")
    size("two-newlines", b"20\n\n", "MalformedError")
    size("leading-zero", b"020\n", "MalformedError")
    size("plus", b"+20\n", "MalformedError")
    size("space", b" 20\n", "MalformedError")
    size("empty", b"", "MalformedError")
    size("text", b"conflict\n", "MalformedError")

    def response(case_id: str, body: bytes, expect: str) -> None:
        record: dict[str, Any] = {
            "id": f"response/{case_id}",
            "op": "parse_cosignature_response",
            "body_b64": b64(body),
            "expect": expect,
        }
        if expect == "ok":
            record["lines"] = body.count(b"\n")
        cases.append(record)

    response("one-line", line1, "ok")
    response("two-lines", line1 + line2, "ok")
    response("empty", b"", "MalformedError")
    response("no-newline", line1[:-1], "MalformedError")
    response("blank-line-first", b"\n" + line1, "MalformedError")
    response("hyphen-not-em-dash", b"-" + line1[3:], "MalformedError")
    response("not-base64", line1[:-5] + b"!!!!\n", "MalformedError")
    response("17-lines", line1 * 17, "LimitExceededError")
    response("plain-text", b"ok\n", "MalformedError")

    cases.append(
        {
            "id": "encode/with-proof",
            "op": "encode_add_checkpoint",
            "old_size": 7,
            "proof": [h.hex() for h in proof],
            "note_b64": b64(note20),
            "expect": "ok",
            "body_b64": b64(good),
        }
    )
    for case_id, old, hashes, expect in (
        ("negative-old", -1, [], "MalformedError"),
        ("proof-from-zero", 0, [proof[0]], "MalformedError"),
        ("short-hash", 7, [b"\x00" * 31], "MalformedError"),
        ("64-hashes", 7, [b"\x00" * 32] * 64, "LimitExceededError"),
    ):
        cases.append(
            {
                "id": f"encode/{case_id}",
                "op": "encode_add_checkpoint",
                "old_size": old,
                "proof": [h.hex() for h in hashes],
                "note_b64": b64(note20),
                "expect": expect,
            }
        )

    def attach(case_id: str, note: bytes, lines: bytes, expect: str, out: bytes = b"") -> None:
        record: dict[str, Any] = {
            "id": f"attach/{case_id}",
            "op": "attach_signatures",
            "note_b64": b64(note),
            "lines_b64": b64(lines),
            "expect": expect,
        }
        if expect == "ok":
            record["result_b64"] = b64(out)
        cases.append(record)

    attach("two-witnesses", note20, line1 + line2, "ok", note20 + line1 + line2)
    attach("already-there", note20 + line1, line1 + line2, "ok", note20 + line1 + line2)
    attach("repeated-in-lines", note20, line1 + line1, "ok", note20 + line1)
    attach("not-a-note", b"hello\n", line1, "MalformedError")
    attach("too-many", note20 + line1 * 99, line2, "LimitExceededError")
    return cases


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"v": 1, "cases": build()}, indent=1) + "\n")


if __name__ == "__main__":
    main()
