"""crypto.aead: libsodium's XChaCha20-Poly1305 called through PyNaCl's cffi binding. Driven by
the draft-irtf-cfrg-xchacha-03 test vector (appendix A.3.1) and by agreement with
``nacl.bindings`` on random inputs; every length the C function trusts is refused here first."""

from __future__ import annotations

import os

import nacl.bindings
import pytest

from crypto import aead
from crypto.errors import DecryptionError, MalformedError

# draft-irtf-cfrg-xchacha-03, appendix A.3.1
KEY = bytes.fromhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
NONCE = bytes.fromhex("404142434445464748494a4b4c4d4e4f5051525354555657")
AAD = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
PLAINTEXT = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
    b"future, sunscreen would be it."
)
SEALED = bytes.fromhex(
    "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
    "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
    "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
    "21f9664c97637da9768812f615c68b13b52e"
    "c0875924c1c7987947deafd8780acf49"
)


def test_the_draft_vector_seals_and_opens() -> None:
    assert aead.encrypt(KEY, NONCE, AAD, PLAINTEXT) == SEALED
    assert aead.decrypt(KEY, NONCE, AAD, SEALED) == PLAINTEXT


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 64, 97, 1000, 70_000])
def test_byte_identical_to_nacl_bindings(size: int) -> None:
    key, nonce, aad, message = (
        os.urandom(32),
        os.urandom(24),
        os.urandom(size % 50),
        os.urandom(size),
    )
    sealed = aead.encrypt(key, nonce, aad, message)
    assert sealed == nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        message, aad, nonce, key
    )
    assert aead.decrypt(key, nonce, aad, sealed) == message
    assert type(aead.decrypt(key, nonce, aad, sealed)) is bytes


@pytest.mark.parametrize("where", ["key", "nonce", "aad", "ciphertext", "tag", "truncated"])
def test_any_change_fails_authentication(where: str) -> None:
    key, nonce, aad, sealed = bytearray(KEY), bytearray(NONCE), bytearray(AAD), bytearray(SEALED)
    if where == "key":
        key[0] ^= 1
    elif where == "nonce":
        nonce[23] ^= 0x80
    elif where == "aad":
        aad[5] ^= 1
    elif where == "ciphertext":
        sealed[10] ^= 1
    elif where == "tag":
        sealed[-1] ^= 1
    else:
        sealed = sealed[:15]
    with pytest.raises(DecryptionError):
        aead.decrypt(bytes(key), bytes(nonce), bytes(aad), bytes(sealed))


@pytest.mark.parametrize(
    ("key", "nonce"),
    [(KEY[:31], NONCE), (KEY + b"\0", NONCE), (KEY, NONCE[:23]), (KEY, NONCE + b"\0"), (b"", b"")],
)
def test_a_wrong_key_or_nonce_length_is_refused_before_libsodium_reads_it(
    key: bytes, nonce: bytes
) -> None:
    with pytest.raises(MalformedError):
        aead.encrypt(key, nonce, AAD, PLAINTEXT)
    with pytest.raises(MalformedError):
        aead.decrypt(key, nonce, AAD, SEALED)


@pytest.mark.parametrize("wrong", [bytearray(PLAINTEXT), memoryview(PLAINTEXT), PLAINTEXT.decode()])
def test_only_bytes_are_taken(wrong: object) -> None:
    with pytest.raises(MalformedError):
        aead.encrypt(KEY, NONCE, AAD, wrong)  # type: ignore[arg-type]
    with pytest.raises(MalformedError):
        aead.encrypt(bytearray(KEY), NONCE, AAD, PLAINTEXT)  # type: ignore[arg-type]
    with pytest.raises(MalformedError):
        aead.decrypt(KEY, NONCE, wrong, SEALED)  # type: ignore[arg-type]
