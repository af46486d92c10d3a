"""Feed encryption: one AEAD pass per batch, one HPKE key wrap per partner.

A batch of entries (aligned with a log range) is encrypted once with a fresh 32-byte key using
XChaCha20-Poly1305; its associated data binds the log origin, the range [start, end) and the
format version. The batch key is wrapped for each authorised partner with HPKE (RFC 9180) base
mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20Poly1305, whose ``info`` carries the
same binding; HPKE itself binds the recipient's public key. Cost grows with entries plus
partners x batches. Byte formats and rationale: specs/feed-encryption.md (v1).

HPKE is pyca/cryptography's single-shot ``hpke.Suite``, not our own code; the wrap only frames
its ``enc || ct`` output. The library draws the ephemeral key, so wraps are not reproducible;
the fixed wrap vectors come from a test-only sender in specs/vectors/generate_protocol.py.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)

from crypto import aead
from crypto._common import MAX_INT63, check_int
from crypto.errors import DecryptionError, KeyFormatError, LimitExceededError, MalformedError

__all__ = [
    "BATCH_AAD_DOMAIN",
    "BATCH_KEY_SIZE",
    "BATCH_MAGIC",
    "BATCH_NONCE_SIZE",
    "DEFAULT_MAX_BATCH",
    "FORMAT_VERSION",
    "WRAP_INFO_DOMAIN",
    "WRAP_MAGIC",
    "WRAP_SIZE",
    "BatchBinding",
    "SealedBatch",
    "generate_recipient_key",
    "load_recipient_private",
    "load_recipient_public",
    "new_batch_key",
    "open_batch",
    "open_wrapped_batch",
    "recipient_public_bytes",
    "seal_batch",
    "seal_batch_fresh",
    "unwrap_key",
    "wrap_key",
]

FORMAT_VERSION = 1
BATCH_MAGIC = b"NCFB"
WRAP_MAGIC = b"NCFW"
BATCH_AAD_DOMAIN = b"ncii-exchange/feed-batch/v1\x00"
WRAP_INFO_DOMAIN = b"ncii-exchange/feed-wrap/v1\x00"
BATCH_KEY_SIZE = 32
BATCH_NONCE_SIZE = 24
TAG_SIZE = 16
X25519_SIZE = 32
WRAP_SIZE = 5 + X25519_SIZE + BATCH_KEY_SIZE + TAG_SIZE
BATCH_HEADER_SIZE = 5 + BATCH_NONCE_SIZE
MAX_ORIGIN_LEN = 255
MAX_INDEX = MAX_INT63
DEFAULT_MAX_BATCH = 256 << 20

# RFC 9180 suite 0x0020/0x0001/0x0003. Immutable: a Suite holds only the three algorithm ids.
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


@dataclass(frozen=True, slots=True)
class BatchBinding:
    """Where a batch belongs: log origin and the leaf range [start, end) it covers."""

    origin: str
    start: int
    end: int

    def __post_init__(self) -> None:
        # Partners build bindings from the hub's JSON: wrong types are malformed input.
        if not isinstance(self.origin, str):
            raise MalformedError("origin must be text")
        raw = self.origin.encode("utf-8", "surrogatepass")
        if not 1 <= len(raw) <= MAX_ORIGIN_LEN or any(b < 0x21 or b > 0x7E for b in raw):
            raise MalformedError("origin must be 1-255 printable ASCII characters without spaces")
        check_int(self.start, MAX_INDEX, "batch start")
        check_int(self.end, MAX_INDEX, "batch end")
        if not self.start < self.end:
            raise MalformedError("batch range must satisfy 0 <= start < end <= 2**63-1")

    def encode(self) -> bytes:
        """u8 len(origin) || origin || u64 start || u64 end (specs/feed-encryption.md 3.1)."""
        raw = self.origin.encode("ascii")
        return bytes((len(raw),)) + raw + struct.pack(">QQ", self.start, self.end)

    def batch_aad(self) -> bytes:
        """Associated data of the batch AEAD."""
        return BATCH_AAD_DOMAIN + self.encode()

    def wrap_info(self) -> bytes:
        """HPKE ``info`` of the key wrap."""
        return WRAP_INFO_DOMAIN + self.encode()


# -- X25519 key helpers ---------------------------------------------------------------------


def generate_recipient_key() -> X25519PrivateKey:
    """A fresh X25519 key pair for a partner (keep the private key; register the public)."""
    return X25519PrivateKey.generate()


def load_recipient_private(raw: bytes) -> X25519PrivateKey:
    """An X25519 private key from its 32 raw bytes."""
    if len(raw) != X25519_SIZE:
        raise KeyFormatError(f"an X25519 private key is {X25519_SIZE} bytes, not {len(raw)}")
    return X25519PrivateKey.from_private_bytes(bytes(raw))


def load_recipient_public(raw: bytes) -> X25519PublicKey:
    """An X25519 public key from its 32 raw bytes."""
    if len(raw) != X25519_SIZE:
        raise KeyFormatError(f"an X25519 public key is {X25519_SIZE} bytes, not {len(raw)}")
    return X25519PublicKey.from_public_bytes(bytes(raw))


def recipient_public_bytes(key: X25519PrivateKey | X25519PublicKey) -> bytes:
    """The 32 raw bytes of a partner's public key (of a private key's public half)."""
    public = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _as_public(key: X25519PublicKey | bytes) -> X25519PublicKey:
    if isinstance(key, X25519PublicKey):
        return key
    return load_recipient_public(key)


def _as_private(key: X25519PrivateKey | bytes) -> X25519PrivateKey:
    if isinstance(key, X25519PrivateKey):
        return key
    return load_recipient_private(key)


# -- batch AEAD -----------------------------------------------------------------------------


def new_batch_key() -> bytes:
    """A fresh random 32-byte batch key (one per batch, never reused)."""
    return os.urandom(BATCH_KEY_SIZE)


@dataclass(frozen=True, slots=True)
class SealedBatch:
    """An encrypted batch: nonce and ciphertext (plaintext length + 16-byte tag)."""

    nonce: bytes
    ciphertext: bytes

    def encode(self) -> bytes:
        """magic "NCFB" || version || nonce (24) || ciphertext."""
        return BATCH_MAGIC + bytes((FORMAT_VERSION,)) + self.nonce + self.ciphertext

    @classmethod
    def decode(cls, data: bytes, max_size: int = DEFAULT_MAX_BATCH) -> SealedBatch:
        """Strictly parse a sealed batch, refusing anything over ``max_size`` bytes."""
        if len(data) > max_size:
            raise LimitExceededError(f"sealed batch of {len(data)} bytes exceeds {max_size}")
        if len(data) < BATCH_HEADER_SIZE + TAG_SIZE:
            raise MalformedError("sealed batch is truncated")
        if bytes(data[:4]) != BATCH_MAGIC:
            raise MalformedError("not a sealed feed batch (bad magic)")
        if data[4] != FORMAT_VERSION:
            raise MalformedError(f"sealed batch version {data[4]} is not supported")
        return cls(bytes(data[5:BATCH_HEADER_SIZE]), bytes(data[BATCH_HEADER_SIZE:]))


def _check_key(key: bytes) -> bytes:
    if len(key) != BATCH_KEY_SIZE:
        raise MalformedError(f"batch key must be {BATCH_KEY_SIZE} bytes, not {len(key)}")
    return bytes(key)


def seal_batch(plaintext: bytes, binding: BatchBinding, key: bytes, nonce: bytes) -> SealedBatch:
    """Encrypt a batch once (deterministic given key and nonce; never reuse a key/nonce pair)."""
    key = _check_key(key)
    if len(nonce) != BATCH_NONCE_SIZE:
        raise MalformedError(f"batch nonce must be {BATCH_NONCE_SIZE} bytes")
    ciphertext = aead.encrypt(key, bytes(nonce), binding.batch_aad(), bytes(plaintext))
    return SealedBatch(bytes(nonce), ciphertext)


def seal_batch_fresh(plaintext: bytes, binding: BatchBinding) -> tuple[bytes, SealedBatch]:
    """:func:`seal_batch` with a fresh random key and nonce; returns (key, sealed)."""
    key = new_batch_key()
    return key, seal_batch(plaintext, binding, key, os.urandom(BATCH_NONCE_SIZE))


def open_batch(
    sealed: SealedBatch | bytes,
    binding: BatchBinding,
    key: bytes,
    max_size: int = DEFAULT_MAX_BATCH,
) -> bytes:
    """Decrypt a batch; any change to ciphertext, nonce, key or binding -> DecryptionError."""
    if not isinstance(sealed, SealedBatch):
        sealed = SealedBatch.decode(sealed, max_size)
    key = _check_key(key)
    if len(sealed.nonce) != BATCH_NONCE_SIZE or len(sealed.ciphertext) < TAG_SIZE:
        raise MalformedError("sealed batch has a wrong nonce or ciphertext length")
    try:
        return aead.decrypt(key, sealed.nonce, binding.batch_aad(), sealed.ciphertext)
    except DecryptionError:
        raise DecryptionError("batch does not decrypt under this key and binding") from None


# -- HPKE key wrap (RFC 9180 base mode, single shot, via pyca/cryptography) --------------


def wrap_key(key: bytes, recipient_public: X25519PublicKey | bytes, binding: BatchBinding) -> bytes:
    """Wrap a batch key for one partner; returns the 85-byte wrap. The library draws a fresh
    ephemeral key for every call, so two wraps of the same key never repeat."""
    key = _check_key(key)
    pk_r = _as_public(recipient_public)
    try:
        enc_ct = _SUITE.encrypt(key, pk_r, binding.wrap_info())
    except ValueError:
        # The only ValueError a well-typed X25519 encryption raises: a zero DH output.
        raise KeyFormatError("recipient public key is a low-order point") from None
    if len(enc_ct) != WRAP_SIZE - 5:
        raise AssertionError("HPKE output length does not match the v1 wrap format")
    return WRAP_MAGIC + bytes((FORMAT_VERSION,)) + enc_ct


def unwrap_key(
    wrap: bytes, recipient_private: X25519PrivateKey | bytes, binding: BatchBinding
) -> bytes:
    """Recover a batch key; a wrap for another recipient, origin or range, or any altered
    byte, raises DecryptionError."""
    wrap = bytes(wrap)
    if len(wrap) != WRAP_SIZE:
        raise MalformedError(f"key wrap must be {WRAP_SIZE} bytes, not {len(wrap)}")
    if wrap[:4] != WRAP_MAGIC:
        raise MalformedError("not a feed key wrap (bad magic)")
    if wrap[4] != FORMAT_VERSION:
        raise MalformedError(f"key wrap version {wrap[4]} is not supported")
    sk_r = _as_private(recipient_private)
    try:
        return _SUITE.decrypt(wrap[5:], sk_r, binding.wrap_info())
    except (InvalidTag, ValueError):
        # InvalidTag: wrong recipient, binding or altered bytes; ValueError: low-order enc.
        raise DecryptionError("key wrap is not for this recipient, origin or range") from None


def open_wrapped_batch(
    sealed: SealedBatch | bytes,
    wrap: bytes,
    recipient_private: X25519PrivateKey | bytes,
    binding: BatchBinding,
    max_size: int = DEFAULT_MAX_BATCH,
) -> bytes:
    """What a partner does per batch: unwrap its key, then decrypt the batch."""
    return open_batch(sealed, binding, unwrap_key(wrap, recipient_private, binding), max_size)
