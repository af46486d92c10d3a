"""crypto.witness_protocol: the C2SP tlog-witness bodies, from generated vectors and properties."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import crypto
from crypto import errors
from crypto.checkpoint import Checkpoint
from crypto.cosignature import cosign_checkpoint, verify_cosignature
from crypto.keys import ALG_COSIGNATURE_V1, signer_key_from_seed
from crypto.note import parse_note, sign_note
from crypto.witness_protocol import (
    MAX_REQUEST_BYTES,
    attach_signatures,
    encode_add_checkpoint,
    encode_size_body,
    parse_add_checkpoint,
    parse_cosignature_response,
    parse_size_body,
)

VECTORS = Path(__file__).resolve().parents[1] / "specs" / "vectors" / "witness-protocol"


def _cases() -> list[dict[str, Any]]:
    data = json.loads((VECTORS / "cases.json").read_text())
    assert data["v"] == 1
    cases: list[dict[str, Any]] = data["cases"]
    return cases


CASES = _cases()


def _b(case: dict[str, Any], field: str) -> bytes:
    return base64.b64decode(case[field + "_b64"])


def _run(case: dict[str, Any]) -> object:
    op = case["op"]
    if op == "parse_add_checkpoint":
        return parse_add_checkpoint(_b(case, "body"))
    if op == "parse_size_body":
        return parse_size_body(_b(case, "body"))
    if op == "parse_cosignature_response":
        return parse_cosignature_response(_b(case, "body"))
    if op == "encode_add_checkpoint":
        proof = [bytes.fromhex(h) for h in case["proof"]]
        return encode_add_checkpoint(case["old_size"], proof, _b(case, "note"))
    if op == "attach_signatures":
        lines = parse_cosignature_response(_b(case, "lines"))
        return attach_signatures(_b(case, "note"), lines)
    raise AssertionError(f"unknown op {op}")


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_vector(case: dict[str, Any]) -> None:
    if case["expect"] != "ok":
        with pytest.raises(getattr(errors, case["expect"])) as info:
            _run(case)
        assert type(info.value).__name__ == case["expect"]
        return
    result = _run(case)
    op = case["op"]
    if op == "parse_add_checkpoint":
        assert isinstance(result, crypto.AddCheckpointRequest)
        assert result.old_size == case["old_size"]
        assert [h.hex() for h in result.proof] == case["proof"]
        assert result.note == _b(case, "note")
        # The encoder gives back the exact bytes.
        assert encode_add_checkpoint(result.old_size, result.proof, result.note) == _b(case, "body")
    elif op == "parse_size_body":
        assert result == case["size"]
        assert encode_size_body(case["size"]) == _b(case, "body")
    elif op == "parse_cosignature_response":
        assert isinstance(result, tuple) and len(result) == case["lines"]
        assert b"".join(s.encode_line() for s in result) == _b(case, "body")
    elif op == "encode_add_checkpoint":
        assert result == _b(case, "body")
    else:
        assert result == _b(case, "result")


def test_vectors_regenerate_identically(tmp_path: Path) -> None:
    before = (VECTORS / "cases.json").read_bytes()
    script = VECTORS.parent / "generate_witness_protocol.py"
    subprocess.run([sys.executable, str(script)], check=True, timeout=60)
    assert (VECTORS / "cases.json").read_bytes() == before


def test_exported_from_crypto() -> None:
    for name in (
        "encode_add_checkpoint",
        "parse_add_checkpoint",
        "encode_size_body",
        "parse_size_body",
        "parse_cosignature_response",
        "attach_signatures",
    ):
        assert name in crypto.__all__


def test_attached_cosignatures_verify() -> None:
    """The hub's path: parse the witness's 200 answer, attach it, verify with the witness key."""
    log = signer_key_from_seed("log.example.org/t", b"\x01" * 32)
    witness = signer_key_from_seed("w.example", b"\x02" * 32, ALG_COSIGNATURE_V1)
    cp = Checkpoint(log.name, 5, b"\x03" * 32)
    note = sign_note(cp.encode(), [log])
    answer = cosign_checkpoint(cp, witness, timestamp=1767225600)
    merged = attach_signatures(note, parse_cosignature_response(answer))
    assert verify_cosignature(merged, witness.verifier, origin=log.name).timestamp == 1767225600
    assert attach_signatures(merged, parse_cosignature_response(answer)) == merged


def test_oversized_request_is_refused_before_parsing() -> None:
    with pytest.raises(errors.LimitExceededError):
        parse_add_checkpoint(b"old 0\n\n" + b"x" * MAX_REQUEST_BYTES)


@pytest.mark.parametrize("value", [None, "old 0\n\nx", 7, ["old 0"]])
def test_non_bytes_are_malformed(value: object) -> None:
    for parse in (parse_add_checkpoint, parse_size_body, parse_cosignature_response):
        with pytest.raises(errors.MalformedError):
            parse(value)  # type: ignore[arg-type]


@given(st.binary(max_size=400))
def test_random_bytes_raise_only_typed_errors(data: bytes) -> None:
    for parse in (parse_add_checkpoint, parse_size_body, parse_cosignature_response):
        try:
            parse(data)
        except errors.MalformedError:
            pass


@given(
    st.integers(min_value=1, max_value=2**63 - 1),
    st.lists(st.binary(min_size=32, max_size=32), max_size=63),
)
def test_encode_parse_round_trip(old: int, proof: list[bytes]) -> None:
    note = b"origin\n1\n" + b"A" * 43 + b"=\n\n\xe2\x80\x94 k AAAAAAA=\n"
    body = encode_add_checkpoint(old, proof, note)
    parsed = parse_add_checkpoint(body)
    assert (parsed.old_size, list(parsed.proof), parsed.note) == (old, proof, note)
    parse_note(parsed.note)


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_size_round_trip(size: int) -> None:
    assert parse_size_body(encode_size_body(size)) == size
