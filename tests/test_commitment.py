"""Leaf commitments and leaf data: specs/commitment.md and its vectors."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import protocolkit
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import commitment
from crypto.commitment import LeafData, LeafKind
from crypto.errors import CommitmentMismatchError, MalformedError

VECTOR_DIR = Path(__file__).resolve().parents[1] / "specs" / "vectors"


def _params(name: str) -> list[Any]:
    return protocolkit.params("commitment", name)


_generator = protocolkit.generator
_error = protocolkit.error_class
SALT = bytes(range(32))


@pytest.mark.parametrize("case", _params("commit.json"))
def test_commit_vector(case: dict[str, Any]) -> None:
    entry = bytes.fromhex(case["entry"])
    salt = bytes.fromhex(case["salt"])
    value = bytes.fromhex(case["commitment"])
    if "error" in case:
        with pytest.raises(_error(case["error"])) as info:
            commitment.verify_commitment(entry, salt, value)
        assert type(info.value).__name__ == case["error"]
    else:
        assert commitment.commit(entry, salt) == value
        commitment.verify_commitment(entry, salt, value)


@pytest.mark.parametrize("case", _params("leaf.json"))
def test_leaf_vector(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["leaf"])
    if "error" in case:
        with pytest.raises(_error(case["error"])) as info:
            commitment.decode_leaf(data)
        assert type(info.value).__name__ == case["error"]
    else:
        kind = LeafKind[case["kind"].upper()]
        value = bytes.fromhex(case["commitment"])
        assert commitment.encode_leaf(kind, value) == data
        assert commitment.decode_leaf(data) == LeafData(kind, value)


def test_vectors_regenerate_identically() -> None:
    gen = _generator()
    for filename, cases in gen.build_commitment().items():
        on_disk = (VECTOR_DIR / "commitment" / filename).read_text(encoding="utf-8")
        assert gen.render(cases) == on_disk, filename


def test_commitment_is_hmac_over_domain_and_entry() -> None:
    """The spec's formula, recomputed with the standard library (what another implementer does)."""
    entry = b"some entry"
    want = hmac.new(SALT, b"ncii-exchange/leaf-commitment/v1\x00" + entry, hashlib.sha256).digest()
    assert commitment.commit(entry, SALT) == want


@given(entry=st.binary(max_size=512), salt=st.binary(min_size=32, max_size=32))
def test_commit_round_trip(entry: bytes, salt: bytes) -> None:
    value = commitment.commit(entry, salt)
    assert len(value) == 32
    commitment.verify_commitment(entry, salt, value)
    for kind in LeafKind:
        leaf = LeafData.for_entry(kind, entry, salt)
        assert LeafData.decode(leaf.encode()) == leaf
        leaf.verify(entry, salt)


@given(
    entry=st.binary(max_size=64),
    other=st.binary(max_size=64),
    salt=st.binary(min_size=32, max_size=32),
)
def test_other_entry_does_not_verify(entry: bytes, other: bytes, salt: bytes) -> None:
    if entry == other:
        return
    with pytest.raises(CommitmentMismatchError):
        commitment.verify_commitment(other, salt, commitment.commit(entry, salt))


@given(index=st.integers(0, 31), mask=st.integers(1, 255))
def test_any_salt_or_commitment_byte_change_is_caught(index: int, mask: int) -> None:
    entry = b"entry"
    value = commitment.commit(entry, SALT)
    salt = bytearray(SALT)
    salt[index] ^= mask
    with pytest.raises(CommitmentMismatchError):
        commitment.verify_commitment(entry, bytes(salt), value)
    changed = bytearray(value)
    changed[index] ^= mask
    with pytest.raises(CommitmentMismatchError):
        commitment.verify_commitment(entry, SALT, bytes(changed))


@given(index=st.integers(0, 33), mask=st.integers(1, 255))
def test_leaf_single_byte_change(index: int, mask: int) -> None:
    """A changed leaf byte is either refused as malformed or decodes to a different leaf whose
    commitment no longer verifies (a changed kind with the same commitment is caught by the
    Merkle root, not here)."""
    leaf = LeafData.for_entry(LeafKind.ADDITION, b"entry", SALT)
    data = bytearray(leaf.encode())
    data[index] ^= mask
    try:
        decoded = LeafData.decode(bytes(data))
    except MalformedError:
        assert index < 2
        return
    assert decoded != leaf
    if index >= 2:
        with pytest.raises(CommitmentMismatchError):
            decoded.verify(b"entry", SALT)


@pytest.mark.parametrize("size", [0, 1, 31, 33, 64])
def test_wrong_salt_length(size: int) -> None:
    with pytest.raises(MalformedError):
        commitment.commit(b"entry", bytes(size))


def test_leaf_refuses_bad_fields() -> None:
    with pytest.raises(MalformedError):
        LeafData(LeafKind.ADDITION, bytes(31))
    with pytest.raises(MalformedError):
        LeafData(1, bytes(32))  # type: ignore[arg-type]


def test_new_salt_is_fresh() -> None:
    a, b = commitment.new_salt(), commitment.new_salt()
    assert len(a) == 32 and a != b


@given(st.binary(max_size=80))
def test_fuzz_decode_leaf(data: bytes) -> None:
    try:
        leaf = commitment.decode_leaf(data)
    except MalformedError:
        return
    assert leaf.encode() == data
