"""The exceptions crypto/ raises: one class per failure class.

Callers catch by class, never by message text. Every parser in crypto/ takes untrusted bytes and
raises a subclass of :class:`MalformedError` for input that does not follow the format, so a
caller can tell "this is not a valid thing" from "this is a valid thing that does not verify".
Verification never returns a bare False: it returns a value or raises a
:class:`VerificationError` subclass.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base of every error raised by crypto/."""


# -- input that does not follow its format -------------------------------------------------


class MalformedError(CryptoError, ValueError):
    """Bytes or text that do not follow the format they claim (wrong length, bad encoding, ...)."""


class LimitExceededError(MalformedError):
    """Input larger than an explicit limit of the format (note size, signature count, ...)."""


class JsonBoundsError(MalformedError):
    """JSON text refused by :func:`crypto.boundedjson.loads`: larger or deeper than allowed, not
    UTF-8, not valid JSON, NaN/Infinity, an unpaired surrogate or too many arrays and objects.
    The message says which; it never quotes the text."""


class KeyFormatError(MalformedError):
    """A signer or verifier key string, or raw key bytes, that cannot be parsed."""


class RecoveryCodeError(MalformedError):
    """A recovery code that cannot be read: wrong length, a character outside the alphabet,
    or a checksum mismatch (a typo). ``group`` names the 1-based group that is likely wrong,
    when it can be told."""

    def __init__(self, message: str, group: int | None = None) -> None:
        super().__init__(message)
        self.group = group


# -- well-formed input that does not verify ------------------------------------------------


class VerificationError(CryptoError):
    """Well-formed input that fails verification."""


class InvalidSignatureError(VerificationError):
    """A signature by a known key that does not verify over the exact bytes."""


class NoKnownSignatureError(VerificationError):
    """A signed note that carries no signature by any key the verifier trusts."""


class InvalidProofError(VerificationError):
    """A Merkle inclusion or consistency proof that does not verify (wrong length, wrong
    hashes, or a root that does not match)."""


class InconsistentTreeError(VerificationError):
    """Tree data (tiles, stored hashes, checkpoints) that contradicts itself or a trusted root."""


class StaleMessageError(VerificationError):
    """A signed envelope whose timestamp is outside the accepted window (replay or clock skew)."""


class WrongPurposeError(VerificationError):
    """A signed envelope made for another purpose or protocol version than the one expected."""


class DecryptionError(VerificationError):
    """Ciphertext, key wrap or associated data that fails authentication."""


class CommitmentMismatchError(VerificationError):
    """An entry and salt that do not recompute the expected leaf commitment."""


# -- case puzzle (specs/case-puzzle.md) ----------------------------------------------------


class PuzzleInvalidError(VerificationError):
    """A case puzzle solution that does not verify: a challenge the hub did not issue, or a
    nonce whose work does not reach the challenge's difficulty."""


class PuzzleExpiredError(VerificationError):
    """A case puzzle challenge from an epoch the hub no longer accepts; fetch a fresh one."""


class PuzzleCancelledError(CryptoError):
    """Solving a case puzzle was stopped by the caller's cancel hook before a solution."""
