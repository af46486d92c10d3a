"""Encryption at rest: each entry's body and salt under its own key; tombstones under master.key.

Why one key per entry: a withdrawal must destroy a person's hash values for good even where
database pages, WAL segments or backups keep the ciphertext. Entry keys live only in the key
store (hub.vault, never in the database), so erasing one key there makes every copy of that
entry's ciphertext unreadable, and a partial withdrawal erases exactly the entries named.
XChaCha20-Poly1305 (libsodium, through crypto.aead) with random 24-byte nonces; the associated
data binds each ciphertext to its case and entry, so rows cannot be swapped. Format:
specs/hub-storage.md section 4.
"""

from __future__ import annotations

import os

from crypto import aead
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
NONCE_SIZE = aead.NONCE_SIZE
_ENTRY_AAD = b"ncii-hub/entry/v2\x00"
_TOMBSTONE_AAD = b"ncii-hub/tombstone/v1\x00"


def new_entry_key() -> bytes:
    """A fresh random 32-byte entry key (stored only in the key store)."""
    return os.urandom(ENTRY_KEY_SIZE)


def _seal(key: bytes, aad: bytes, plaintext: bytes) -> bytes:
    nonce = os.urandom(NONCE_SIZE)
    return nonce + aead.encrypt(key, nonce, aad, plaintext)


def _open(key: bytes, aad: bytes, blob: bytes) -> bytes:
    blob = bytes(blob)  # a database driver may hand over a memoryview
    if len(blob) < NONCE_SIZE + aead.TAG_SIZE:
        raise MalformedError("stored ciphertext is truncated")
    try:
        return aead.decrypt(key, blob[:NONCE_SIZE], aad, blob[NONCE_SIZE:])
    except DecryptionError:
        raise DecryptionError("stored ciphertext does not authenticate") from None


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
