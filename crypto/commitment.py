"""Leaf commitments and the log's leaf data.

The public log must not reveal hash values or which entries form a case (published work inverts
PDQ hashes, and a public list is a membership oracle), yet a partner holding an entry and its
salt must be able to recompute the leaf. So each leaf holds a hiding, binding commitment:
HMAC-SHA256 keyed by a fresh 32-byte salt over a domain label and the entry bytes.
Format and rationale: specs/commitment.md (v1).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
from dataclasses import dataclass

from crypto.errors import CommitmentMismatchError, MalformedError

__all__ = [
    "COMMITMENT_DOMAIN",
    "COMMITMENT_SIZE",
    "LEAF_DATA_SIZE",
    "LEAF_VERSION",
    "SALT_SIZE",
    "LeafData",
    "LeafKind",
    "commit",
    "decode_leaf",
    "encode_leaf",
    "new_salt",
    "verify_commitment",
]

COMMITMENT_DOMAIN = b"ncii-exchange/leaf-commitment/v1\x00"
SALT_SIZE = 32
COMMITMENT_SIZE = 32
LEAF_VERSION = 1
LEAF_DATA_SIZE = 2 + COMMITMENT_SIZE


class LeafKind(enum.IntEnum):
    """What a leaf records; specs/commitment.md section 4."""

    ADDITION = 1
    TOMBSTONE = 2


def new_salt() -> bytes:
    """A fresh random 32-byte salt (one per entry, never reused)."""
    return os.urandom(SALT_SIZE)


def _check_salt(salt: bytes) -> None:
    if len(salt) != SALT_SIZE:
        raise MalformedError(f"salt must be {SALT_SIZE} bytes, not {len(salt)}")


def commit(entry: bytes, salt: bytes) -> bytes:
    """The 32-byte commitment HMAC-SHA256(key=salt, COMMITMENT_DOMAIN || entry)."""
    _check_salt(salt)
    return hmac.new(bytes(salt), COMMITMENT_DOMAIN + bytes(entry), hashlib.sha256).digest()


def verify_commitment(entry: bytes, salt: bytes, commitment: bytes) -> None:
    """Raise :class:`CommitmentMismatchError` unless entry and salt recompute ``commitment``
    (compared in constant time)."""
    if len(commitment) != COMMITMENT_SIZE:
        raise MalformedError(f"commitment must be {COMMITMENT_SIZE} bytes, not {len(commitment)}")
    if not hmac.compare_digest(commit(entry, salt), bytes(commitment)):
        raise CommitmentMismatchError("entry and salt do not recompute the leaf commitment")


@dataclass(frozen=True, slots=True)
class LeafData:
    """One log leaf: version, kind and commitment, nothing else (34 bytes)."""

    kind: LeafKind
    commitment: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.kind, LeafKind):
            raise MalformedError("leaf kind must be a LeafKind")
        if len(self.commitment) != COMMITMENT_SIZE:
            raise MalformedError(f"commitment must be {COMMITMENT_SIZE} bytes")

    @classmethod
    def for_entry(cls, kind: LeafKind, entry: bytes, salt: bytes) -> LeafData:
        """The leaf that commits to ``entry`` under ``salt``."""
        return cls(kind, commit(entry, salt))

    def encode(self) -> bytes:
        """version (1) || kind (1) || commitment (32)."""
        return bytes((LEAF_VERSION, int(self.kind))) + bytes(self.commitment)

    @classmethod
    def decode(cls, data: bytes) -> LeafData:
        """Strictly parse leaf data; any other length, version or kind is refused."""
        data = bytes(data)
        if len(data) != LEAF_DATA_SIZE:
            raise MalformedError(f"leaf data must be {LEAF_DATA_SIZE} bytes, not {len(data)}")
        if data[0] != LEAF_VERSION:
            raise MalformedError(f"leaf data version {data[0]} is not supported")
        try:
            kind = LeafKind(data[1])
        except ValueError:
            raise MalformedError(f"unknown leaf kind {data[1]}") from None
        return cls(kind, data[2:])

    def verify(self, entry: bytes, salt: bytes) -> None:
        """Raise :class:`CommitmentMismatchError` unless this leaf commits to entry and salt."""
        verify_commitment(entry, salt, self.commitment)


def encode_leaf(kind: LeafKind, commitment: bytes) -> bytes:
    """Leaf data bytes for the Merkle log (see :meth:`LeafData.encode`)."""
    return LeafData(kind, bytes(commitment)).encode()


def decode_leaf(data: bytes) -> LeafData:
    """Parse leaf data bytes (see :meth:`LeafData.decode`)."""
    return LeafData.decode(data)
