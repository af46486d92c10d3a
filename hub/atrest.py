"""Encryption at rest: each entry's body and salt under its own key; tombstones under master.key.

Why one key per entry: a withdrawal must destroy a person's hash values for good even where
database pages, WAL segments or backups keep the ciphertext. Entry keys live only in the key
store (hub.vault, never in the database), so erasing one key there makes every copy of that
entry's ciphertext unreadable, and a partial withdrawal erases exactly the entries named.
XChaCha20-Poly1305 (libsodium via pynacl) with random 24-byte nonces; the associated data binds
each ciphertext to its case and entry, so rows cannot be swapped. Format: specs/hub-storage.md
section 4.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import nacl.bindings
import nacl.exceptions

from crypto.commitment import SALT_SIZE
from crypto.errors import DecryptionError, MalformedError

__all__ = [
    "ENTRY_KEY_SIZE",
    "new_entry_key",
    "open_entry",
    "open_tombstone",
    "seal_entry",
    "seal_tombstone",
]

ENTRY_KEY_SIZE = 32
NONCE_SIZE = 24
_TAG_SIZE = 16
_MAX_MESSAGE = 1 << 30  # far above any entry; below libsodium's own limit
_ENTRY_AAD = b"ncii-hub/entry/v2\x00"
_TOMBSTONE_AAD = b"ncii-hub/tombstone/v1\x00"


def new_entry_key() -> bytes:
    """A fresh random 32-byte entry key (stored only in the key store)."""
    return os.urandom(ENTRY_KEY_SIZE)


# libsodium's XChaCha20-Poly1305 as pynacl itself calls it (its compiled cffi module). Why not
# nacl.bindings' wrapper: per call it formats four error messages and checks types it cannot
# know are fixed here; with ten entries per submission that cost more than the cipher. The
# checks that keep the C call in bounds (key and nonce lengths, bytes only) are done below.
def _sodium() -> tuple[Any, Any]:
    """pynacl's (ffi, lib), or (None, None) if this pynacl has no such module (then its
    public wrapper is used)."""
    try:
        module: Any = importlib.import_module("nacl._sodium")
        lib = module.lib
        for name in (
            "crypto_aead_xchacha20poly1305_ietf_encrypt",
            "crypto_aead_xchacha20poly1305_ietf_decrypt",
        ):
            getattr(lib, name)
    except (ImportError, AttributeError):
        return None, None
    return module.ffi, lib


_ffi, _lib = _sodium()


def _check(key: bytes, nonce: bytes, data: bytes, aad: bytes) -> None:
    if not (
        type(key) is bytes
        and len(key) == ENTRY_KEY_SIZE
        and type(nonce) is bytes
        and len(nonce) == NONCE_SIZE
        and type(data) is bytes
        and type(aad) is bytes
        and len(data) <= _MAX_MESSAGE
    ):
        raise MalformedError("an entry key, nonce or text of the wrong type or size")


def _encrypt(plaintext: bytes, aad: bytes, nonce: bytes, key: bytes) -> bytes:
    _check(key, nonce, plaintext, aad)
    if _lib is None:
        return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, nonce, key)
    out = _ffi.new("unsigned char[]", len(plaintext) + _TAG_SIZE)
    out_len = _ffi.new("unsigned long long *")
    if _lib.crypto_aead_xchacha20poly1305_ietf_encrypt(
        out, out_len, plaintext, len(plaintext), aad, len(aad), _ffi.NULL, nonce, key
    ):
        raise MalformedError("encryption failed")
    return bytes(_ffi.buffer(out, out_len[0]))


def _decrypt(ciphertext: bytes, aad: bytes, nonce: bytes, key: bytes) -> bytes:
    try:
        _check(key, nonce, ciphertext, aad)
    except MalformedError:
        raise DecryptionError("stored ciphertext does not authenticate") from None
    if _lib is None:
        try:
            return bytes(
                nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                    ciphertext, aad, nonce, key
                )
            )
        except nacl.exceptions.CryptoError:
            raise DecryptionError("stored ciphertext does not authenticate") from None
    out = _ffi.new("unsigned char[]", max(1, len(ciphertext) - _TAG_SIZE))
    out_len = _ffi.new("unsigned long long *")
    if _lib.crypto_aead_xchacha20poly1305_ietf_decrypt(
        out, out_len, _ffi.NULL, ciphertext, len(ciphertext), aad, len(aad), nonce, key
    ):
        raise DecryptionError("stored ciphertext does not authenticate")
    return bytes(_ffi.buffer(out, out_len[0]))


def _seal(key: bytes, aad: bytes, plaintext: bytes) -> bytes:
    nonce = os.urandom(NONCE_SIZE)
    return nonce + _encrypt(bytes(plaintext), aad, nonce, bytes(key))


def _open(key: bytes, aad: bytes, blob: bytes) -> bytes:
    if len(blob) < NONCE_SIZE + _TAG_SIZE:
        raise MalformedError("stored ciphertext is truncated")
    blob = bytes(blob)
    return _decrypt(blob[NONCE_SIZE:], aad, blob[:NONCE_SIZE], bytes(key))


def _entry_aad(label: bytes, case_id: str, entry_id: str) -> bytes:
    return label + case_id.encode("ascii") + b"\x00" + entry_id.encode("ascii")


def seal_entry(entry_key: bytes, case_id: str, entry_id: str, salt: bytes, body: bytes) -> bytes:
    """Encrypt salt || entry body under the entry's own key, bound to (case, entry)."""
    if len(salt) != SALT_SIZE:
        raise MalformedError("salt must be 32 bytes")
    return _seal(entry_key, _entry_aad(_ENTRY_AAD, case_id, entry_id), salt + body)


def open_entry(entry_key: bytes, case_id: str, entry_id: str, blob: bytes) -> tuple[bytes, bytes]:
    """(salt, body) of a sealed entry."""
    plain = _open(entry_key, _entry_aad(_ENTRY_AAD, case_id, entry_id), blob)
    if len(plain) < SALT_SIZE:
        raise DecryptionError("stored entry is shorter than its salt")
    return plain[:SALT_SIZE], plain[SALT_SIZE:]


def seal_tombstone(
    master_key: bytes, case_id: str, entry_id: str, salt: bytes, body: bytes
) -> bytes:
    """Tombstones hold no hash value and outlive erasure (partners need them): master.key."""
    if len(salt) != SALT_SIZE:
        raise MalformedError("salt must be 32 bytes")
    return _seal(master_key, _entry_aad(_TOMBSTONE_AAD, case_id, entry_id), salt + body)


def open_tombstone(
    master_key: bytes, case_id: str, entry_id: str, blob: bytes
) -> tuple[bytes, bytes]:
    """(salt, body) of a sealed tombstone."""
    plain = _open(master_key, _entry_aad(_TOMBSTONE_AAD, case_id, entry_id), blob)
    if len(plain) < SALT_SIZE:
        raise DecryptionError("stored tombstone is shorter than its salt")
    return plain[:SALT_SIZE], plain[SALT_SIZE:]
