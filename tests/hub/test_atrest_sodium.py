"""hub.atrest calls libsodium's XChaCha20-Poly1305 through pynacl's compiled module: the same
bytes as pynacl's public wrapper, both ways, and the same refusals (wrong key, tampered or
truncated text, other case or entry, keys and nonces of the wrong size)."""

from __future__ import annotations

import os

import nacl.bindings
import pytest

from crypto.errors import DecryptionError, MalformedError
from hub import atrest

CASE = "c" * 64
ENTRY = "0123456789abcdef0123456789abcdef"


@pytest.fixture(params=["sodium", "wrapper"])
def binding(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs on the direct binding and on the fallback (pynacl's wrapper)."""
    if request.param == "sodium":
        assert atrest._lib is not None  # this pynacl has it: the hub uses the direct call
    else:
        monkeypatch.setattr(atrest, "_lib", None)
    return str(request.param)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 100, 4096])
def test_same_bytes_as_pynacl(binding: str, size: int) -> None:
    key, nonce, aad = os.urandom(32), os.urandom(24), os.urandom(size % 50)
    plain = os.urandom(size)
    ours = atrest._encrypt(plain, aad, nonce, key)
    theirs = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plain, aad, nonce, key)
    assert ours == theirs
    assert atrest._decrypt(theirs, aad, nonce, key) == plain


def test_round_trip_and_refusals(binding: str) -> None:
    key, salt = atrest.new_entry_key(), os.urandom(32)
    body = b'{"hash":{"algorithm":"md5","hash":"' + b"a" * 32 + b'"},"kind":"addition","v":1}'
    blob = atrest.seal_entry(key, CASE, ENTRY, salt, body)
    assert atrest.open_entry(key, CASE, ENTRY, blob) == (salt, body)
    assert atrest.seal_entry(key, CASE, ENTRY, salt, body) != blob  # a fresh nonce each time
    with pytest.raises(DecryptionError):
        atrest.open_entry(os.urandom(32), CASE, ENTRY, blob)
    with pytest.raises(DecryptionError):
        atrest.open_entry(key, CASE, "f" * 32, blob)  # bound to its entry
    with pytest.raises(DecryptionError):
        atrest.open_tombstone(key, CASE, ENTRY, blob)  # and to its kind
    for i in (0, 24, len(blob) - 1):
        tampered = bytearray(blob)
        tampered[i] ^= 1
        with pytest.raises(DecryptionError):
            atrest.open_entry(key, CASE, ENTRY, bytes(tampered))
    with pytest.raises(MalformedError):
        atrest.open_entry(key, CASE, ENTRY, blob[:39])
    with pytest.raises(DecryptionError):
        atrest.open_entry(key[:31], CASE, ENTRY, blob)
    with pytest.raises(DecryptionError):
        atrest.open_entry(key + b"\x00", CASE, ENTRY, blob)
    with pytest.raises(MalformedError):
        atrest.seal_entry(key[:16], CASE, ENTRY, salt, body)


def test_wrong_sizes_never_reach_the_library(binding: str) -> None:
    key, nonce = os.urandom(32), os.urandom(24)
    for bad_key, bad_nonce in ((key[:31], nonce), (key, nonce[:23]), (key + b"x", nonce)):
        with pytest.raises(MalformedError):
            atrest._encrypt(b"text", b"", bad_nonce, bad_key)
        with pytest.raises(DecryptionError):
            atrest._decrypt(b"t" * 32, b"", bad_nonce, bad_key)
    with pytest.raises(MalformedError):
        atrest._encrypt("text", b"", nonce, key)  # type: ignore[arg-type]
