"""Feed encryption: specs/feed-encryption.md and its vectors, plus HPKE interoperability.

The runtime wrap is pyca/cryptography's HPKE with a library-drawn ephemeral key, so fixed wraps
come only from the checked-in vectors (made by the generator's test-only deterministic sender);
the runtime is tested by opening those vectors and by round trips.
"""

from __future__ import annotations

import functools
import inspect
import json
from pathlib import Path
from typing import Any

import protocolkit
import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import feed
from crypto.errors import CryptoError, DecryptionError, KeyFormatError, MalformedError
from crypto.feed import BatchBinding

VECTOR_DIR = Path(__file__).resolve().parents[1] / "specs" / "vectors"


def _params(name: str) -> list[Any]:
    return protocolkit.params("feed", name)


_generator = functools.cache(protocolkit.generator)
_error = protocolkit.error_class
BINDING = BatchBinding("hub.example.org/log", 0, 256)
KEY = bytes(range(32))
NONCE = bytes(range(24))
RECIPIENT = X25519PrivateKey.from_private_bytes(bytes([7]) * 32)
OTHER = X25519PrivateKey.from_private_bytes(bytes([9]) * 32)
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def _binding(record: dict[str, Any]) -> BatchBinding:
    b = record["binding"]
    return BatchBinding(b["origin"], b["start"], b["end"])


def _others(b: BatchBinding) -> list[Any]:
    """Bindings differing from ``b`` in origin or range only."""
    return [
        pytest.param(BatchBinding(b.origin + "2", b.start, b.end), id="origin"),
        pytest.param(BatchBinding(b.origin[:-1], b.start, b.end), id="origin-prefix"),
        pytest.param(BatchBinding(b.origin, b.start + 1, b.end), id="start"),
        pytest.param(BatchBinding(b.origin, b.start, b.end - 1), id="end"),
        pytest.param(BatchBinding(b.origin, b.end, 2 * b.end - b.start), id="next-range"),
    ]


# -- vectors --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", _params("batch.json"))
def test_batch_vector(case: dict[str, Any]) -> None:
    binding = _binding(case)
    key = bytes.fromhex(case["key"])
    sealed = bytes.fromhex(case["sealed"])
    if "error" in case:
        with pytest.raises(_error(case["error"])) as info:
            feed.open_batch(sealed, binding, key, case.get("max_size", feed.DEFAULT_MAX_BATCH))
        assert type(info.value).__name__ == case["error"]
        return
    assert binding.encode().hex() == case["binding_encoding"]
    assert binding.batch_aad().hex() == case["aad"]
    plaintext = bytes.fromhex(case["plaintext"])
    out = feed.seal_batch(plaintext, binding, key, bytes.fromhex(case["nonce"]))
    assert out.encode() == sealed
    assert feed.open_batch(sealed, binding, key) == plaintext


@pytest.mark.parametrize("case", _params("wrap.json"))
def test_wrap_vector(case: dict[str, Any]) -> None:
    binding = _binding(case)
    private = bytes.fromhex(case["recipient_private"])
    wrap = bytes.fromhex(case["wrap"])
    if "error" in case:
        with pytest.raises(_error(case["error"])) as info:
            feed.unwrap_key(wrap, private, binding)
        assert type(info.value).__name__ == case["error"]
        return
    assert binding.wrap_info().hex() == case["info"]
    public = bytes.fromhex(case["recipient_public"])
    assert feed.recipient_public_bytes(feed.load_recipient_private(private)) == public
    key = bytes.fromhex(case["key"])
    ephemeral = X25519PrivateKey.from_private_bytes(bytes.fromhex(case["ephemeral_private"]))
    assert wrap[5:37] == feed.recipient_public_bytes(ephemeral)  # enc
    assert feed.unwrap_key(wrap, private, binding) == key


@pytest.mark.parametrize("case", _params("binding.json"))
def test_binding_vector(case: dict[str, Any]) -> None:
    if "error" in case:
        with pytest.raises(_error(case["error"])):
            _binding(case)
    else:
        assert _binding(case).encode().hex() == case["encoding"]


def test_vectors_regenerate_identically() -> None:
    gen = _generator()
    for filename, cases in gen.build_feed().items():
        on_disk = (VECTOR_DIR / "feed" / filename).read_text(encoding="utf-8")
        assert gen.render(cases) == on_disk, filename


def test_crypto_has_no_deterministic_wrap() -> None:
    """The caller cannot choose the ephemeral key: only the library draws it."""
    params = list(inspect.signature(feed.wrap_key).parameters)
    assert params == ["key", "recipient_public", "binding"]


# -- HPKE interoperability ------------------------------------------------------------------


@settings(max_examples=25)
@given(key=st.binary(min_size=32, max_size=32))
def test_wrap_is_plain_hpke_framed(key: bytes) -> None:
    wrap = feed.wrap_key(key, RECIPIENT.public_key(), BINDING)
    assert wrap[:5] == feed.WRAP_MAGIC + b"\x01" and len(wrap) == feed.WRAP_SIZE
    assert SUITE.decrypt(wrap[5:], RECIPIENT, BINDING.wrap_info()) == key
    assert feed.unwrap_key(wrap, RECIPIENT, BINDING) == key


@settings(max_examples=25)
@given(key=st.binary(min_size=32, max_size=32), eph=st.binary(min_size=32, max_size=32))
def test_vector_sender_agrees_with_library(key: bytes, eph: bytes) -> None:
    """The generator's test-only deterministic sender makes wraps the runtime opens."""
    public = feed.recipient_public_bytes(RECIPIENT)
    wrap = _generator().deterministic_hpke_wrap(key, public, BINDING, eph)
    assert feed.unwrap_key(wrap, RECIPIENT, BINDING) == key


def test_cryptography_hpke_wrap_opens_with_ours() -> None:
    for _ in range(10):
        ct = SUITE.encrypt(KEY, RECIPIENT.public_key(), BINDING.wrap_info())
        assert feed.unwrap_key(feed.WRAP_MAGIC + b"\x01" + ct, RECIPIENT, BINDING) == KEY


# -- behaviour ------------------------------------------------------------------------------


@given(
    plaintext=st.binary(max_size=4096),
    start=st.integers(0, 2**40),
    length=st.integers(1, 2**20),
)
def test_round_trip(plaintext: bytes, start: int, length: int) -> None:
    binding = BatchBinding("log.example/x", start, start + length)
    key, sealed = feed.seal_batch_fresh(plaintext, binding)
    wrap = feed.wrap_key(key, RECIPIENT.public_key(), binding)
    assert len(wrap) == feed.WRAP_SIZE
    assert len(sealed.encode()) == len(plaintext) + 5 + 24 + 16
    assert feed.open_wrapped_batch(sealed.encode(), wrap, RECIPIENT, binding) == plaintext
    assert feed.open_batch(sealed, binding, key) == plaintext


_SEALED = feed.seal_batch(b"entries " * 20, BINDING, KEY, NONCE).encode()
# Tamper tests run on the checked-in vector wrap (reproducible) and on a fresh library wrap.
_VEC = json.loads((VECTOR_DIR / "feed" / "wrap.json").read_text(encoding="utf-8"))["cases"][0]
_VEC_BINDING = _binding(_VEC)
_VEC_RECIPIENT = feed.load_recipient_private(bytes.fromhex(_VEC["recipient_private"]))
_VEC_KEY = bytes.fromhex(_VEC["key"])
_WRAPS = {
    "vector": (bytes.fromhex(_VEC["wrap"]), _VEC_RECIPIENT, _VEC_BINDING, _VEC_KEY),
    "fresh": (feed.wrap_key(KEY, RECIPIENT.public_key(), BINDING), RECIPIENT, BINDING, KEY),
}
_WRAP = _WRAPS["fresh"][0]


@given(index=st.integers(0, len(_SEALED) - 1), mask=st.integers(1, 255))
def test_any_sealed_byte_change_is_rejected(index: int, mask: int) -> None:
    data = bytearray(_SEALED)
    data[index] ^= mask
    expected = MalformedError if index < 5 else DecryptionError
    with pytest.raises(expected):
        feed.open_batch(bytes(data), BINDING, KEY)


@pytest.mark.parametrize("which", list(_WRAPS))
@given(index=st.integers(0, feed.WRAP_SIZE - 1), mask=st.integers(1, 255))
def test_any_wrap_byte_change_is_rejected(which: str, index: int, mask: int) -> None:
    wrap, recipient, binding, key = _WRAPS[which]
    assert feed.unwrap_key(wrap, recipient, binding) == key
    data = bytearray(wrap)
    data[index] ^= mask
    expected = MalformedError if index < 5 else DecryptionError
    with pytest.raises(expected):
        feed.unwrap_key(bytes(data), recipient, binding)


@pytest.mark.parametrize("other", _others(BINDING))
def test_other_binding_fails_batch(other: BatchBinding) -> None:
    with pytest.raises(DecryptionError):
        feed.open_batch(_SEALED, other, KEY)


@pytest.mark.parametrize("other", _others(BINDING))
def test_other_binding_fails_fresh_wrap(other: BatchBinding) -> None:
    with pytest.raises(DecryptionError):
        feed.unwrap_key(_WRAP, RECIPIENT, other)


@pytest.mark.parametrize("other", _others(_VEC_BINDING))
def test_other_binding_fails_vector_wrap(other: BatchBinding) -> None:
    with pytest.raises(DecryptionError):
        feed.unwrap_key(_WRAPS["vector"][0], _VEC_RECIPIENT, other)


@pytest.mark.parametrize("which", list(_WRAPS))
def test_wrong_recipient(which: str) -> None:
    wrap, _, binding, _ = _WRAPS[which]
    with pytest.raises(DecryptionError):
        feed.unwrap_key(wrap, OTHER, binding)


def test_wrong_batch_key() -> None:
    with pytest.raises(DecryptionError):
        feed.open_batch(_SEALED, BINDING, bytes(32))


def test_wrap_is_bound_to_recipient_key_even_with_same_shared_secret() -> None:
    """HPKE puts pkR into the KEM context, so a wrap re-labelled for another recipient whose
    private key is congruent (same DH result) still fails: clamping makes bit 255 irrelevant."""
    raw = feed.recipient_public_bytes(RECIPIENT)
    twin = bytes(raw[:31]) + bytes([raw[31] | 0x80])
    wrap = feed.wrap_key(KEY, twin, BINDING)
    with pytest.raises(DecryptionError):
        feed.unwrap_key(wrap, RECIPIENT, BINDING)


def test_low_order_recipient_key_is_refused() -> None:
    with pytest.raises(KeyFormatError):
        feed.wrap_key(KEY, bytes(32), BINDING)


@pytest.mark.parametrize("size", [0, 31, 33])
def test_key_helpers_check_lengths(size: int) -> None:
    with pytest.raises(KeyFormatError):
        feed.load_recipient_private(bytes(size))
    with pytest.raises(KeyFormatError):
        feed.load_recipient_public(bytes(size))
    with pytest.raises(MalformedError):
        feed.seal_batch(b"", BINDING, bytes(size), NONCE)
    with pytest.raises(MalformedError):
        feed.wrap_key(bytes(size), RECIPIENT.public_key(), BINDING)


def test_nonce_length_checked() -> None:
    with pytest.raises(MalformedError):
        feed.seal_batch(b"", BINDING, KEY, bytes(12))


def test_generated_recipient_key_round_trips() -> None:
    sk = feed.generate_recipient_key()
    pub = feed.recipient_public_bytes(sk)
    assert feed.recipient_public_bytes(feed.load_recipient_public(pub)) == pub
    wrap = feed.wrap_key(KEY, pub, BINDING)
    assert feed.unwrap_key(wrap, sk, BINDING) == KEY


def test_fresh_helpers_draw_new_randomness() -> None:
    k1, s1 = feed.seal_batch_fresh(b"x", BINDING)
    k2, s2 = feed.seal_batch_fresh(b"x", BINDING)
    assert k1 != k2 and s1.nonce != s2.nonce
    w1 = feed.wrap_key(KEY, RECIPIENT.public_key(), BINDING)
    w2 = feed.wrap_key(KEY, RECIPIENT.public_key(), BINDING)
    assert w1[5:37] != w2[5:37] and w1 != w2  # a new ephemeral (enc) per wrap


@given(st.binary(max_size=200))
def test_fuzz_open_batch(data: bytes) -> None:
    with pytest.raises(CryptoError):
        feed.open_batch(data, BINDING, KEY)


@given(st.binary(max_size=120))
def test_fuzz_unwrap(data: bytes) -> None:
    with pytest.raises(CryptoError):
        feed.unwrap_key(data, RECIPIENT, BINDING)


@given(st.binary(min_size=80, max_size=80))
def test_fuzz_unwrap_with_valid_header(tail: bytes) -> None:
    with pytest.raises(DecryptionError):
        feed.unwrap_key(feed.WRAP_MAGIC + b"\x01" + tail, RECIPIENT, BINDING)


@given(origin=st.text(max_size=300), start=st.integers(), end=st.integers())
def test_fuzz_binding(origin: str, start: int, end: int) -> None:
    try:
        binding = BatchBinding(origin, start, end)
    except MalformedError:
        return
    assert 0 <= start < end < 2**63
    assert binding.encode()[1:].startswith(origin.encode("ascii"))


@pytest.mark.parametrize(
    ("origin", "start", "end"),
    [
        pytest.param(b"hub.example.org", 0, 1, id="origin-bytes"),
        pytest.param(None, 0, 1, id="origin-none"),
        pytest.param("hub.example.org", "0", 1, id="start-text"),
        pytest.param("hub.example.org", 0, 1.0, id="end-float"),
        pytest.param("hub.example.org", True, 2, id="start-bool"),
        pytest.param("hub.example.org", None, 2, id="start-none"),
    ],
)
def test_binding_from_untrusted_json_types(origin: Any, start: Any, end: Any) -> None:
    """Partners build bindings from the hub's JSON: a wrong type is malformed input, not a
    TypeError escaping from crypto/."""
    with pytest.raises(MalformedError):
        BatchBinding(origin, start, end)
