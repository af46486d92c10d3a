"""Signed envelopes and partner request signatures: specs/envelope.md and its vectors."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import nacl.signing
import protocolkit
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import envelope, keys
from crypto.errors import (
    CryptoError,
    InvalidSignatureError,
    KeyFormatError,
    LimitExceededError,
    MalformedError,
    StaleMessageError,
    WrongPurposeError,
)

VECTOR_DIR = Path(__file__).resolve().parents[1] / "specs" / "vectors"


def _params(name: str) -> list[Any]:
    return protocolkit.params("envelope", name)


_generator = protocolkit.generator
_error = protocolkit.error_class


def _cases(name: str) -> list[dict[str, Any]]:
    return protocolkit.cases("envelope", name)


SEED = bytes(range(32))
KEY = nacl.signing.SigningKey(SEED)
TS = 1_700_000_000
NONCE = bytes(16)


# -- vectors --------------------------------------------------------------------------------


def test_vectors_directory_comes_from_fixture(own_vectors: Path) -> None:
    assert own_vectors.resolve() == VECTOR_DIR.resolve()


@pytest.mark.parametrize("case", _params("seal.json"))
def test_seal_vector(case: dict[str, Any]) -> None:
    key = nacl.signing.SigningKey(bytes.fromhex(case["signing_seed"]))
    out = envelope.seal(
        key,
        case["purpose"],
        bytes.fromhex(case["body"]),
        case["timestamp"],
        bytes.fromhex(case["nonce"]),
    )
    assert out.hex() == case["envelope"]
    opened = envelope.open(out, case["purpose"], case["timestamp"])
    assert opened.body.hex() == case["body"]


@pytest.mark.parametrize("case", _params("open.json"))
def test_open_vector(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["envelope"])

    def run() -> envelope.OpenedEnvelope:
        return envelope.open(
            data, case["expected_purpose"], case["now"], case["window_seconds"], case["max_body"]
        )

    if "error" in case:
        with pytest.raises(_error(case["error"])) as info:
            run()
        assert type(info.value).__name__ == case["error"]
    else:
        opened = run()
        want = case["result"]
        assert opened.purpose == want["purpose"]
        assert opened.public_key.hex() == want["public_key"]
        assert opened.timestamp == want["timestamp"]
        assert opened.nonce.hex() == want["nonce"]
        assert opened.body.hex() == want["body"]
        assert opened.replay_key.hex() == want["replay_key"]


@pytest.mark.parametrize("case", _params("partner_request.json"))
def test_partner_request_vector(case: dict[str, Any]) -> None:
    if case["id"] == "request/sign":
        key = nacl.signing.SigningKey(bytes.fromhex(case["signing_seed"]))
        body = bytes.fromhex(case["body"])
        nonce = bytes.fromhex(case["nonce"])
        sig = envelope.sign_partner_request(
            key, case["method"], case["path"], body, case["timestamp"], nonce
        )
        assert sig.signature.hex() == case["signature"]
        assert sig.to_header() == case["header"]
        message = envelope.partner_request_message(
            case["method"], case["path"], hashlib.sha256(body).digest(), case["timestamp"], nonce
        )
        assert message.hex() == case["message"]
        return

    def run() -> None:
        parsed = envelope.RequestSignature.from_header(case["header"])
        envelope.verify_partner_request(
            bytes.fromhex(case["expected_public_key"]),
            parsed,
            case["method"],
            case["path"],
            bytes.fromhex(case["body"]),
            case["now"],
            case["window_seconds"],
        )

    if "error" in case:
        with pytest.raises(_error(case["error"])) as info:
            run()
        assert type(info.value).__name__ == case["error"]
    else:
        run()


def test_vectors_regenerate_identically() -> None:
    gen = _generator()
    for filename, cases in gen.build_envelope().items():
        on_disk = (VECTOR_DIR / "envelope" / filename).read_text(encoding="utf-8")
        assert gen.render(cases) == on_disk, filename


# -- behaviour ------------------------------------------------------------------------------


@given(
    purpose=st.sampled_from(list(envelope.Purpose)),
    body=st.binary(max_size=2048),
    timestamp=st.integers(min_value=0, max_value=2**63 - 1),
    nonce=st.binary(min_size=16, max_size=16),
)
def test_round_trip(purpose: envelope.Purpose, body: bytes, timestamp: int, nonce: bytes) -> None:
    data = envelope.seal(KEY, purpose, body, timestamp, nonce)
    opened = envelope.open(data, purpose, timestamp, 0, len(body))
    assert opened.body == body
    assert opened.purpose == purpose.value
    assert opened.public_key == bytes(KEY.verify_key)
    assert opened.timestamp == timestamp
    assert opened.replay_key == bytes(KEY.verify_key) + nonce


def test_seal_is_deterministic_and_cryptography_keys_agree() -> None:
    a = envelope.seal(KEY, "submission", b"x", TS, NONCE)
    b = envelope.seal(Ed25519PrivateKey.from_private_bytes(SEED), "submission", b"x", TS, NONCE)
    assert a == b


_GOOD = envelope.seal(KEY, envelope.Purpose.WITHDRAWAL, b"withdraw case 42", TS, NONCE)


@given(index=st.integers(min_value=0, max_value=len(_GOOD) - 1), mask=st.integers(1, 255))
def test_any_single_byte_change_is_rejected(index: int, mask: int) -> None:
    data = bytearray(_GOOD)
    data[index] ^= mask
    with pytest.raises(CryptoError):
        envelope.open(bytes(data), envelope.Purpose.WITHDRAWAL, TS)


@given(index=st.integers(min_value=6 + len("withdrawal"), max_value=len(_GOOD) - 1))
def test_change_after_header_lengths_is_a_bad_signature(index: int) -> None:
    """Past the fixed-length prefix and the body length, a changed byte can only be caught by
    the signature (the body length field itself changes the layout)."""
    body_len_at = 6 + len("withdrawal") + 32 + 8 + 16
    if body_len_at <= index < body_len_at + 4:
        return
    data = bytearray(_GOOD)
    data[index] ^= 0x40
    with pytest.raises(InvalidSignatureError):
        envelope.open(bytes(data), envelope.Purpose.WITHDRAWAL, TS)


@given(delta=st.integers(min_value=-1000, max_value=1000), window=st.integers(0, 600))
def test_window_edges(delta: int, window: int) -> None:
    if abs(delta) <= window:
        envelope.open(_GOOD, "withdrawal", TS + delta, window)
    else:
        with pytest.raises(StaleMessageError):
            envelope.open(_GOOD, "withdrawal", TS + delta, window)


def test_wrong_purpose_after_valid_signature() -> None:
    with pytest.raises(WrongPurposeError):
        envelope.open(_GOOD, envelope.Purpose.SUBMISSION, TS)


def test_body_limit_is_checked_before_signature() -> None:
    big = envelope.seal(KEY, "submission", b"a" * 100, TS, NONCE)
    with pytest.raises(LimitExceededError):
        envelope.open(big, "submission", TS, max_body=99)
    forged = bytearray(big)
    forged[-1] ^= 1  # bad signature, but the limit answers first and cheaply
    with pytest.raises(LimitExceededError):
        envelope.open(bytes(forged), "submission", TS, max_body=99)
    with pytest.raises(LimitExceededError):
        envelope.open(big + bytes(10_000), "submission", TS, max_body=99)


@pytest.mark.parametrize(
    ("purpose", "timestamp", "nonce"),
    [
        pytest.param("Submission", TS, NONCE, id="purpose-uppercase"),
        pytest.param("", TS, NONCE, id="purpose-empty"),
        pytest.param("a" * 65, TS, NONCE, id="purpose-too-long"),
        pytest.param("sub mission", TS, NONCE, id="purpose-space"),
        pytest.param("pürpose", TS, NONCE, id="purpose-non-ascii"),
        pytest.param("submission", -1, NONCE, id="timestamp-negative"),
        pytest.param("submission", 2**63, NONCE, id="timestamp-too-large"),
        pytest.param("submission", TS, bytes(15), id="nonce-short"),
        pytest.param("submission", TS, bytes(17), id="nonce-long"),
    ],
)
def test_seal_refuses_bad_fields(purpose: str, timestamp: int, nonce: bytes) -> None:
    with pytest.raises(MalformedError):
        envelope.seal(KEY, purpose, b"", timestamp, nonce)


def test_seal_now_uses_fresh_nonces() -> None:
    a = envelope.open(envelope.seal_now(KEY, "status-query", b"", TS), "status-query", TS)
    b = envelope.open(envelope.seal_now(KEY, "status-query", b"", TS), "status-query", TS)
    assert a.replay_key != b.replay_key
    assert len(envelope.new_nonce()) == 16


def test_peek_public_key_is_unverified_but_parsed() -> None:
    assert envelope.peek_public_key(_GOOD) == bytes(KEY.verify_key)
    with pytest.raises(MalformedError):
        envelope.peek_public_key(_GOOD[:-1])


@given(st.binary(max_size=400))
def test_fuzz_open_random_bytes(data: bytes) -> None:
    with pytest.raises(CryptoError):
        envelope.open(data, "submission", TS)


@given(st.binary(max_size=300))
def test_fuzz_open_after_valid_prefix(tail: bytes) -> None:
    with pytest.raises(CryptoError):
        envelope.open(_GOOD[:20] + tail, "withdrawal", TS)


# -- partner requests -----------------------------------------------------------------------


def _request(**overrides: Any) -> envelope.RequestSignature:
    args: dict[str, Any] = {
        "method": "GET",
        "path": "/v1/batches/3",
        "body": b"",
        "timestamp": TS,
        "nonce": NONCE,
    }
    args.update(overrides)
    return envelope.sign_partner_request(KEY, **args)


def test_partner_request_round_trip_through_header() -> None:
    sig = _request()
    parsed = envelope.RequestSignature.from_header(sig.to_header())
    assert parsed == sig
    envelope.verify_partner_request(KEY.verify_key, parsed, "GET", "/v1/batches/3", b"", TS)
    assert parsed.replay_key == bytes(KEY.verify_key) + NONCE


@pytest.mark.parametrize(
    ("method", "path", "body", "now", "error"),
    [
        pytest.param("POST", "/v1/batches/3", b"", TS, InvalidSignatureError, id="method"),
        pytest.param("GET", "/v1/batches/4", b"", TS, InvalidSignatureError, id="path"),
        pytest.param("GET", "/v1/batches/3", b"x", TS, InvalidSignatureError, id="body"),
        pytest.param("GET", "/v1/batches/3", b"", TS + 301, StaleMessageError, id="stale"),
        pytest.param("GET", "/v1/batches/3", b"", TS - 301, StaleMessageError, id="future"),
        pytest.param("GET", "v1/batches/3", b"", TS, MalformedError, id="relative-path"),
        pytest.param("GET", "/a\nb", b"", TS, MalformedError, id="path-newline"),
        pytest.param("", "/v1/batches/3", b"", TS, MalformedError, id="empty-method"),
    ],
)
def test_partner_request_failures(
    method: str, path: str, body: bytes, now: int, error: type[CryptoError]
) -> None:
    with pytest.raises(error):
        envelope.verify_partner_request(KEY.verify_key, _request(), method, path, body, now)


def test_partner_request_signed_by_other_key() -> None:
    other = nacl.signing.SigningKey(bytes(32))
    with pytest.raises(InvalidSignatureError):
        envelope.verify_partner_request(
            other.verify_key, _request(), "GET", "/v1/batches/3", b"", TS
        )


def test_partner_request_signature_substituted() -> None:
    good = _request()
    bad = envelope.RequestSignature(good.public_key, good.timestamp, good.nonce, bytes(64))
    with pytest.raises(InvalidSignatureError):
        envelope.verify_partner_request(KEY.verify_key, bad, "GET", "/v1/batches/3", b"", TS)


@given(st.text(max_size=300))
def test_fuzz_request_header(text: str) -> None:
    with pytest.raises(MalformedError):
        envelope.RequestSignature.from_header(text)


@settings(max_examples=50)
@given(index=st.integers(0, 100), char=st.characters(codec="ascii"))
def test_header_single_character_change(index: int, char: str) -> None:
    header = _request().to_header()
    index %= len(header)
    if header[index] == char:
        return
    changed = header[:index] + char + header[index + 1 :]
    with pytest.raises(CryptoError):
        parsed = envelope.RequestSignature.from_header(changed)
        envelope.verify_partner_request(KEY.verify_key, parsed, "GET", "/v1/batches/3", b"", TS)


def test_opened_envelope_repr_leaves_out_the_body() -> None:
    """The body carries hash values; logging an opened envelope must not print them."""
    body = b"0123456789abcdef" * 4
    opened = envelope.open(envelope.seal(KEY, "submission", body, TS, NONCE), "submission", TS)
    assert body.hex() not in repr(opened) and repr(body) not in repr(opened)


def test_open_refuses_negative_limits_with_a_typed_error() -> None:
    data = envelope.seal(KEY, "submission", b"", TS, NONCE)
    with pytest.raises(MalformedError):
        envelope.open(data, "submission", TS, window_seconds=-1)
    with pytest.raises(MalformedError):
        envelope.open(data, "submission", TS, max_body=-1)


def test_note_keys_sign_and_verify_envelopes_and_requests() -> None:
    """A plain note key (crypto.keys) is an Ed25519 key like any other: same seed, same bytes."""
    note_key = keys.signer_key_from_seed("partner.example.org", SEED)
    data = envelope.seal(note_key, "submission", b"x", TS, NONCE)
    assert data == envelope.seal(KEY, "submission", b"x", TS, NONCE)
    sig = envelope.sign_partner_request(note_key, "GET", "/v1/feed", b"", TS, NONCE)
    envelope.verify_partner_request(note_key.verifier, sig, "GET", "/v1/feed", b"", TS)


def test_witness_keys_do_not_sign_envelopes() -> None:
    witness = keys.signer_key_from_seed("w.example.org", SEED, keys.ALG_COSIGNATURE_V1)
    with pytest.raises(KeyFormatError):
        envelope.seal(witness, "submission", b"x", TS, NONCE)


@pytest.mark.parametrize("timestamp", [-1, 2**63, "1", 1.0, True], ids=repr)
def test_partner_request_timestamp_is_range_checked(timestamp: Any) -> None:
    with pytest.raises(MalformedError):
        envelope.sign_partner_request(KEY, "GET", "/", b"", timestamp, NONCE)
