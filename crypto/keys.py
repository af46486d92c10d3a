"""Note signer and verifier keys and their C2SP string forms (specs/signed-note.md §3).

A key is a (name, algorithm, key material) triple. Two algorithms are accepted, both Ed25519:

* ``0x01`` (:data:`ALG_ED25519`): plain note signatures over the note text (c2sp.org/signed-note).
* ``0x04`` (:data:`ALG_COSIGNATURE_V1`): timestamped checkpoint cosignatures over
  ``cosignature/v1\\ntime <T>\\n`` + note text (c2sp.org/tlog-cosignature), used by witnesses.

Keys know how to make and check the signature bytes of their algorithm so that a note carrying
both a log signature and witness cosignatures is verified in one pass. Verification runs on
pynacl (libsodium), about twice as fast as ``cryptography`` here.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import struct
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final

from nacl.signing import SigningKey, VerifyKey

from crypto._common import (
    ED25519_KEY_SIZE,
    ED25519_SIGNATURE_SIZE,
    MAX_INT63,
    b64decode_canonical,
    check_int,
    ed25519_verify,
)
from crypto.errors import InvalidSignatureError, KeyFormatError, MalformedError

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "MAX_TIMESTAMP",
    "SignerKey",
    "VerifierKey",
    "b64decode_canonical",
    "check_key_name",
    "compute_key_id",
    "cosignature_message",
    "generate_signer_key",
    "parse_signer_key",
    "parse_verifier_key",
    "signer_key_from_seed",
    "split_cosignature",
]

ALG_ED25519: Final = 0x01
ALG_COSIGNATURE_V1: Final = 0x04
_ACCEPTED_ALGS: Final = frozenset({ALG_ED25519, ALG_COSIGNATURE_V1})
_KEY_SIZE: Final = ED25519_KEY_SIZE  # Ed25519 public key and seed alike
_TIMESTAMP_SIZE: Final = 8
_COSIGNATURE_SIZE: Final = _TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE
#: tlog-cosignature: the timestamp MUST NOT exceed 2^63 - 1.
MAX_TIMESTAMP: Final = MAX_INT63
_COSIGNATURE_HEADER: Final = b"cosignature/v1\n"
_HEX8: Final = re.compile(r"[0-9a-f]{8}")
# Key names appear verbatim in signature lines, so they obey the note's character rules too.
_CONTROL: Final = re.compile(r"[\x00-\x1f]")


def check_key_name(name: str) -> None:
    """Raise KeyFormatError unless ``name`` is a valid key name (signed-note §Format).

    Non-empty, valid UTF-8, no Unicode white space, no '+', no control characters.
    """
    if not isinstance(name, str) or not name:
        raise KeyFormatError("key name is empty")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise KeyFormatError("key name is not valid UTF-8") from exc
    if "+" in name:
        raise KeyFormatError("key name contains '+'")
    if _CONTROL.search(name) or any(c.isspace() for c in name):
        raise KeyFormatError("key name contains white space or a control character")


def compute_key_id(name: str, alg: int, public_key: bytes) -> int:
    """Key ID: the first 4 bytes, big-endian, of SHA-256(name || 0x0A || alg || public key)."""
    check_key_name(name)
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def cosignature_message(text: bytes, timestamp: int) -> bytes:
    """The bytes a cosignature/v1 signature covers (tlog-cosignature §Ed25519 signed message)."""
    _check_timestamp(timestamp)
    return _COSIGNATURE_HEADER + b"time " + str(timestamp).encode("ascii") + b"\n" + text


def _check_timestamp(timestamp: int) -> None:
    check_int(timestamp, MAX_TIMESTAMP, "cosignature timestamp")


def split_cosignature(signature: bytes) -> tuple[int, bytes]:
    """Split cosignature/v1 signature bytes into (timestamp, 64-byte Ed25519 signature).

    MalformedError unless they are exactly 72 bytes with a timestamp of at most 2^63-1.
    """
    if len(signature) != _COSIGNATURE_SIZE:
        raise MalformedError("cosignature/v1 signature must be 72 bytes (timestamp || Ed25519)")
    (timestamp,) = struct.unpack(">Q", signature[:_TIMESTAMP_SIZE])
    if timestamp > MAX_TIMESTAMP:
        raise MalformedError("cosignature timestamp exceeds 2^63-1")
    return timestamp, bytes(signature[_TIMESTAMP_SIZE:])


def _check_fields(name: str, alg: int, material: bytes, what: str) -> None:
    check_key_name(name)
    if alg not in _ACCEPTED_ALGS:
        raise KeyFormatError(f"{what}: unsupported signature type 0x{alg:02x} (want 0x01 or 0x04)")
    if not isinstance(material, bytes) or len(material) != _KEY_SIZE:
        raise KeyFormatError(f"{what}: Ed25519 key material must be {_KEY_SIZE} bytes")


@dataclass(frozen=True)
class VerifierKey:
    """A public key that checks note signatures of one algorithm under one name."""

    name: str
    alg: int
    public_key: bytes

    def __post_init__(self) -> None:
        _check_fields(self.name, self.alg, self.public_key, "verifier key")

    @cached_property
    def key_id(self) -> int:
        """The 32-bit key ID that signature lines by this key carry."""
        return compute_key_id(self.name, self.alg, self.public_key)

    @cached_property
    def _nacl(self) -> VerifyKey:
        return VerifyKey(self.public_key)

    def encode(self) -> str:
        """The vkey string ``<name>+<hex key ID>+<base64(alg || public key)>``."""
        b64 = base64.b64encode(bytes([self.alg]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id:08x}+{b64}"

    def verify_note_signature(self, text: bytes, signature: bytes) -> None:
        """Check ``signature`` (the bytes after the key ID) over the note ``text``; raise if bad.

        For cosignature/v1 keys the signature is timestamp(8, big-endian) || Ed25519(64) and the
        signed message is :func:`cosignature_message`. A wrong length or a timestamp above
        2^63-1 is a signature that does not verify.
        """
        if self.alg == ALG_COSIGNATURE_V1:
            try:
                timestamp, raw = split_cosignature(signature)
            except MalformedError as exc:
                raise InvalidSignatureError(f"bad cosignature: {exc}") from None
            message = cosignature_message(text, timestamp)
        else:
            if len(signature) != ED25519_SIGNATURE_SIZE:
                raise InvalidSignatureError("Ed25519 note signature is not 64 bytes")
            message, raw = text, signature
        ed25519_verify(
            self._nacl, message, raw, f"signature by {self.name}+{self.key_id:08x} does not verify"
        )


@dataclass(frozen=True, eq=False)
class SignerKey:
    """A private key that makes note signatures of one algorithm under one name.

    The seed is kept out of ``repr`` and equality so that it does not leak into logs.
    """

    name: str
    alg: int
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_fields(self.name, self.alg, self.seed, "signer key")

    @cached_property
    def _nacl(self) -> SigningKey:
        return SigningKey(self.seed)

    @cached_property
    def verifier(self) -> VerifierKey:
        """The matching public verifier key."""
        return VerifierKey(self.name, self.alg, bytes(self._nacl.verify_key))

    @property
    def key_id(self) -> int:
        """The 32-bit key ID of this key (same as its verifier's)."""
        return self.verifier.key_id

    def encode(self) -> str:
        """The signer key string ``PRIVATE+KEY+<name>+<hex key ID>+<base64(alg || seed)>``.

        This string is a secret: store it like one.
        """
        b64 = base64.b64encode(bytes([self.alg]) + self.seed).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{b64}"

    def sign_note_signature(self, text: bytes, *, timestamp: int | None = None) -> bytes:
        """Signature bytes (without key ID) over the note ``text``; deterministic (RFC 8032).

        Cosignature/v1 keys need ``timestamp`` (POSIX seconds) and return timestamp || sig;
        plain Ed25519 keys refuse a timestamp, so a caller cannot believe it was signed.
        """
        if self.alg == ALG_COSIGNATURE_V1:
            if timestamp is None:
                raise MalformedError("a cosignature/v1 key needs a timestamp to sign")
            message = cosignature_message(text, timestamp)
            return struct.pack(">Q", timestamp) + self._nacl.sign(message).signature
        if timestamp is not None:
            raise MalformedError("a plain Ed25519 note key does not sign a timestamp")
        return self._nacl.sign(text).signature


def _to_str(data: str | bytes, what: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        # Not chained: the codec's message quotes a byte of what may be a signer key.
        raise KeyFormatError(f"{what} is not valid UTF-8") from None


def _split_key(rest: str, what: str) -> tuple[str, int, int, bytes]:
    """Parse ``name+hex+base64(alg||material)``: the name and hex part never contain '+'."""
    parts = rest.split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError(f"{what}: expected name+keyid+key")
    name, hex_id, b64 = parts
    check_key_name(name)
    if not _HEX8.fullmatch(hex_id):
        raise KeyFormatError(f"{what}: key ID must be 8 lowercase hex digits")
    try:
        raw = b64decode_canonical(b64, what)
    except MalformedError:
        raise KeyFormatError(f"{what}: key is not canonical base64") from None
    if len(raw) != 1 + _KEY_SIZE:
        raise KeyFormatError(f"{what}: key must be 1 type byte and {_KEY_SIZE} key bytes")
    return name, int(hex_id, 16), raw[0], raw[1:]


def parse_verifier_key(data: str | bytes) -> VerifierKey:
    """Parse a vkey string; the key ID in it must match the one computed from the key."""
    text = _to_str(data, "verifier key")
    name, key_id, alg, material = _split_key(text, "verifier key")
    key = VerifierKey(name, alg, material)
    if key.key_id != key_id:
        raise KeyFormatError("verifier key: key ID does not match the name and key")
    return key


def parse_signer_key(data: str | bytes) -> SignerKey:
    """Parse a ``PRIVATE+KEY+...`` string; the key ID must match the derived public key."""
    text = _to_str(data, "signer key")
    prefix = "PRIVATE+KEY+"
    if not text.startswith(prefix):
        raise KeyFormatError("signer key: must start with PRIVATE+KEY+")
    name, key_id, alg, material = _split_key(text[len(prefix) :], "signer key")
    key = SignerKey(name, alg, material)
    if key.key_id != key_id:
        raise KeyFormatError("signer key: key ID does not match the name and key")
    return key


def signer_key_from_seed(name: str, seed: bytes, alg: int = ALG_ED25519) -> SignerKey:
    """Deterministic key from a 32-byte seed (vectors, derived keys)."""
    return SignerKey(name, alg, bytes(seed))


def generate_signer_key(name: str, alg: int = ALG_ED25519) -> SignerKey:
    """A fresh key from the OS random source: a thin wrapper over :func:`signer_key_from_seed`."""
    return signer_key_from_seed(name, os.urandom(_KEY_SIZE), alg)
