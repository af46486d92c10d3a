"""Checks and encodings several formats share, written once so that they cannot drift apart.

Private to crypto/: canonical base64 (padded standard for notes and checkpoints, unpadded
base64url for HTTP headers), range checks of the 63-bit integers every format uses for sizes,
indexes and timestamps, and Ed25519 key handling (pynacl, which verifies about twice as fast as
``cryptography`` here; keys from either library are accepted). Nothing here defines a wire
format; each format's spec says which of these rules it uses.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from crypto.errors import InvalidSignatureError, KeyFormatError, MalformedError

MAX_INT63: Final = 2**63 - 1
"""Largest size, index or timestamp any format accepts: a signed 64-bit integer, as in Go's
tlog, C2SP cosignatures and SQL BIGINT columns."""

ED25519_KEY_SIZE: Final = 32
"""Bytes of an Ed25519 public key and of its private seed."""
ED25519_SIGNATURE_SIZE: Final = 64


# -- integers -------------------------------------------------------------------------------


def check_int(value: object, maximum: int, what: str) -> int:
    """Return ``value`` if it is an int (not a bool) in [0, maximum], else MalformedError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedError(f"{what} must be an integer")
    if not 0 <= value <= maximum:
        raise MalformedError(f"{what} must be between 0 and {maximum}")
    return value


# -- base64 ---------------------------------------------------------------------------------


def b64decode_canonical(text: str | bytes, what: str) -> bytes:
    """Decode standard padded base64 (RFC 4648 §4), accepting only the canonical encoding.

    Canonical means re-encoding gives back the same characters: no whitespace, correct padding
    and zero padding bits. Without this a signed text could be altered without changing its
    meaning.
    """
    try:
        raw_text = text.encode("ascii") if isinstance(text, str) else bytes(text)
        decoded = base64.b64decode(raw_text, validate=True)
    except (ValueError, binascii.Error, TypeError):  # UnicodeEncodeError is a ValueError
        # Not chained: the library's message quotes the offending character of what may be
        # a secret (a signer key string).
        raise MalformedError(f"{what}: not valid base64") from None
    if base64.b64encode(decoded) != raw_text:
        raise MalformedError(f"{what}: base64 is not in canonical form (padding or padding bits)")
    return decoded


def b64url_encode(raw: bytes) -> str:
    """Unpadded base64url (RFC 4648 §5), as HTTP headers carry binary values."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode_canonical(text: str, size: int, what: str) -> bytes:
    """Decode unpadded base64url of exactly ``size`` bytes, accepting only the canonical text."""
    if not isinstance(text, str) or "=" in text:
        raise MalformedError(f"{what}: not unpadded base64url")
    try:
        raw = base64.b64decode(
            (text + "=" * (-len(text) % 4)).encode("ascii"), altchars=b"-_", validate=True
        )
    except (ValueError, binascii.Error):
        raise MalformedError(f"{what}: not valid base64url") from None
    if len(raw) != size or b64url_encode(raw) != text:
        raise MalformedError(f"{what}: not the canonical base64url of {size} bytes")
    return raw


# -- Ed25519 --------------------------------------------------------------------------------

SigningKeyLike = nacl.signing.SigningKey | Ed25519PrivateKey
PublicKeyLike = bytes | nacl.signing.VerifyKey | Ed25519PublicKey


def ed25519_signing_key(key: SigningKeyLike) -> nacl.signing.SigningKey:
    """A pynacl signing key for a pynacl or pyca Ed25519 private key (same RFC 8032 seed)."""
    if isinstance(key, nacl.signing.SigningKey):
        return key
    if isinstance(key, Ed25519PrivateKey):
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return nacl.signing.SigningKey(seed)
    raise TypeError("an Ed25519 signing key must be a nacl SigningKey or an Ed25519PrivateKey")


def ed25519_public_bytes(key: PublicKeyLike) -> bytes:
    """The 32 raw bytes of an Ed25519 public key given as bytes, pynacl or pyca object."""
    if isinstance(key, nacl.signing.VerifyKey):
        return bytes(key)
    if isinstance(key, Ed25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if isinstance(key, bytes | bytearray | memoryview):
        raw = bytes(key)
        if len(raw) != ED25519_KEY_SIZE:
            raise KeyFormatError(
                f"an Ed25519 public key is {ED25519_KEY_SIZE} bytes, not {len(raw)}"
            )
        return raw
    raise TypeError("an Ed25519 public key must be 32 bytes, a nacl VerifyKey or Ed25519PublicKey")


def ed25519_verify(
    key: nacl.signing.VerifyKey | bytes, message: bytes, signature: bytes, failure: str
) -> None:
    """Raise InvalidSignatureError(``failure``) unless ``signature`` verifies over ``message``.

    libsodium's ``crypto_sign_verify_detached`` rejects non-canonical S and small-order keys;
    a signature of the wrong length, or key bytes that are not a point, fail the same way.
    """
    try:
        verify_key = key if isinstance(key, nacl.signing.VerifyKey) else nacl.signing.VerifyKey(key)
        verify_key.verify(message, signature)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        # BadSignatureError is a CryptoError; pynacl raises its ValueError/TypeError subclasses
        # for key or signature bytes of the wrong length.
        raise InvalidSignatureError(failure) from None
