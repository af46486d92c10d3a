"""Conformance (tests/vectors/note) and our generated vectors (specs/vectors/note)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

import crypto.errors as errors
from crypto.checkpoint import open_checkpoint, parse_checkpoint
from crypto.cosignature import (
    add_cosignature,
    open_cosigned_checkpoint,
    verify_cosignature,
)
from crypto.keys import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    compute_key_id,
    parse_signer_key,
    parse_verifier_key,
    signer_key_from_seed,
)
from crypto.note import open_note, sign_note

C2SP_KEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SUMDB_KEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
MIRROR_KEY = "mirror.example.org+3fb148ef+BAAjjch9GyYz0sJsJx7ALhbdAtz2ov0unbzSl1vMp94O"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
PETER_LINE = (
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
).encode()


# -- shared conformance vectors ---------------------------------------------------------------


def test_c2sp_example_verifies(conformance_vectors: Path) -> None:
    key = parse_verifier_key(C2SP_KEY)
    note = open_note((conformance_vectors / "note" / "c2sp-example.note").read_bytes(), [key])
    assert note.text == b"This is an example message.\n"
    assert note.verified_by == (key,)


def test_sumdb_checkpoint_verifies_and_parses(conformance_vectors: Path) -> None:
    key = parse_verifier_key(SUMDB_KEY)
    data = (conformance_vectors / "note" / "sumdb-checkpoint.note").read_bytes()
    signed = open_checkpoint(data, [key], origin="go.sum database tree")
    assert signed.checkpoint.origin == "go.sum database tree"
    assert signed.checkpoint.size == 65664258
    assert signed.checkpoint.root_hash == base64.b64decode(
        "WVVNVD2qx+fTq31zkj6UAqxT5X6HvGphGM+o8Thnbsg="
    )
    assert signed.checkpoint.extensions == ()


def test_peter_neumann_deterministic_signature() -> None:
    signer = parse_signer_key(PETER_SKEY)
    note = sign_note(PETER_TEXT, [signer])
    assert note == PETER_TEXT + b"\n" + PETER_LINE
    assert signer.encode() == PETER_SKEY
    assert open_note(note, [signer.verifier]).verified_by == (signer.verifier,)


def test_sunlight_mirror_cosignature(conformance_vectors: Path) -> None:
    witness = parse_verifier_key(MIRROR_KEY)
    assert witness.alg == ALG_COSIGNATURE_V1
    data = (conformance_vectors / "note" / "sunlight-mirror" / "checkpoint").read_bytes()
    cosig = verify_cosignature(data, witness, origin="rome2026h1.example.org")
    assert cosig.timestamp == 1767139200
    assert cosig.name == "mirror.example.org"
    checkpoint = parse_checkpoint(open_note(data, [witness]).text)
    assert checkpoint.size == 300
    assert checkpoint.root_hash == base64.b64decode("gw31yQrqZZCcEOPrzX+bpy3nJ6QgngTKn8G1m0i62uU=")


@pytest.mark.parametrize("vkey", [C2SP_KEY, SUMDB_KEY, MIRROR_KEY])
def test_key_ids_reproduced(vkey: str) -> None:
    name, hex_id, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64)
    assert f"{compute_key_id(name, raw[0], raw[1:]):08x}" == hex_id
    assert parse_verifier_key(vkey).encode() == vkey


def test_peter_neumann_key_id() -> None:
    signer = parse_signer_key(PETER_SKEY)
    assert f"{signer.key_id:08x}" == "c74f20a3"
    assert signer.alg == ALG_ED25519


# -- our generated vectors --------------------------------------------------------------------

OWN = Path(__file__).resolve().parents[1] / "specs" / "vectors" / "note"
CASES = sorted(OWN.rglob("*.json"))


def _case_id(path: Path) -> str:
    return path.relative_to(OWN).with_suffix("").as_posix()


def _b(record: dict[str, Any], name: str) -> bytes:
    return base64.b64decode(record[name + "_b64"], validate=True)


def _limits(record: dict[str, Any]) -> dict[str, int]:
    return {k: record[k] for k in ("max_size", "max_signatures") if k in record}


def _run(record: dict[str, Any]) -> None:
    """Run one case; return normally only if it is an "ok" case that checked its results."""
    op = record["op"]
    if op == "keypair":
        signer = signer_key_from_seed(
            record["name"], bytes.fromhex(record["seed_hex"]), record["alg"]
        )
        assert signer.encode() == record["signer_key"]
        assert signer.verifier.encode() == record["verifier_key"]
        assert f"{signer.key_id:08x}" == record["key_id"]
        assert signer.verifier.public_key.hex() == record["public_key_hex"]
        assert parse_signer_key(record["signer_key"]).verifier == signer.verifier
        assert parse_verifier_key(record["verifier_key"]) == signer.verifier
    elif op == "parse_verifier_key":
        parse_verifier_key(_b(record, "input"))
    elif op == "parse_signer_key":
        parse_signer_key(_b(record, "input"))
    elif op == "sign_note":
        signers = [parse_signer_key(s) for s in record["signer_keys"]]
        assert sign_note(_b(record, "text"), signers) == _b(record, "note")
    elif op == "open_note":
        keys = [parse_verifier_key(k) for k in record["verifier_keys"]]
        note = open_note(_b(record, "note"), keys, **_limits(record))
        assert [k.name for k in note.verified_by] == record["verified_by"]
        if "text_b64" in record:
            assert note.text == _b(record, "text")
        assert note.encode() == _b(record, "note")
    elif op == "parse_checkpoint":
        checkpoint = parse_checkpoint(_b(record, "input"))
        assert checkpoint.origin == record["origin"]
        assert checkpoint.size == record["size"]
        assert checkpoint.root_hash == _b(record, "root_hash")
        assert list(checkpoint.extensions) == record["extensions"]
        assert checkpoint.encode() == _b(record, "input")
    elif op == "open_checkpoint":
        keys = [parse_verifier_key(k) for k in record["verifier_keys"]]
        signed = open_checkpoint(_b(record, "note"), keys, origin=record["origin"])
        assert signed.checkpoint.size == record["size"]
        assert signed.checkpoint.root_hash == _b(record, "root_hash")
    elif op == "add_cosignature":
        witness = parse_signer_key(record["signer_key"])
        out = add_cosignature(_b(record, "input"), witness, timestamp=record["timestamp"])
        assert out == _b(record, "note")
    elif op == "verify_cosignature":
        wkey = parse_verifier_key(record["witness_key"])
        cosig = verify_cosignature(_b(record, "note"), wkey, origin=record["origin"])
        assert cosig.timestamp == record["timestamp"]
    elif op == "open_cosigned_checkpoint":
        result = open_cosigned_checkpoint(
            _b(record, "note"),
            parse_verifier_key(record["log_key"]),
            [parse_verifier_key(k) for k in record["witness_keys"]],
            origin=record["origin"],
            quorum=record["quorum"],
        )
        assert {c.name: c.timestamp for c in result.cosignatures} == record["timestamps"]
    else:
        raise AssertionError(f"unknown op {op}")


def test_vectors_present() -> None:
    assert len(CASES) > 100


@pytest.mark.parametrize("path", CASES, ids=_case_id)
def test_own_vector(path: Path) -> None:
    record = json.loads(path.read_text(encoding="utf-8"))
    expect = record["expect"]
    if expect == "ok":
        _run(record)
        return
    error_class = getattr(errors, expect)
    assert issubclass(error_class, errors.CryptoError)
    with pytest.raises(error_class) as info:
        _run(record)
    # The most specific class: a MalformedError case must not be a LimitExceededError etc.
    assert type(info.value) is error_class, f"{type(info.value).__name__} instead of {expect}"
