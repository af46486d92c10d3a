"""Case keys: a 128-bit case secret, its recovery code, the derived Ed25519 key and case id.

A person gets no account: the client draws a secret, shows it once as a recovery code, and
derives the case signing key from it (HKDF-SHA256 with a domain label); the case id is a short
hash of the public key. The recovery code is Crockford base32 with two check characters of a
Reed-Solomon code over GF(32), which catches every single-character typo and every adjacent
transposition and locates the group of a single typo. Format and proof: specs/case-keys.md (v1).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from types import MappingProxyType

import nacl.signing
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crypto.errors import KeyFormatError, MalformedError, RecoveryCodeError

__all__ = [
    "CASE_ID_DOMAIN",
    "CASE_ID_LENGTH",
    "CASE_KEY_INFO",
    "CASE_KEY_SALT",
    "CODE_LENGTH",
    "SECRET_SIZE",
    "CaseSecret",
    "case_id",
    "parse_case_id",
]

SECRET_SIZE = 16
DATA_CHARS = 26  # ceil(128 / 5); the first character carries 3 bits (0-7)
CODE_LENGTH = DATA_CHARS + 2
GROUP_SIZE = 4
CASE_KEY_SALT = b"ncii-exchange/case/v1"
CASE_KEY_INFO = b"ncii-exchange/case-key/v1"
CASE_ID_DOMAIN = b"ncii-exchange/case-id/v1\x00"
CASE_ID_LENGTH = 16  # 80 bits
MAX_CODE_INPUT = 200

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
_DECODE: Mapping[str, int] = MappingProxyType(
    {**{c: i for i, c in enumerate(ALPHABET)}, "O": 0, "I": 1, "L": 1}
)
_IGNORED = frozenset(" -\t")


def _gf32_tables() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """exp/log tables of GF(32) = GF(2)[x] / (x^5 + x^2 + 1); alpha = x (= 2) is primitive.
    exp is doubled to 62 entries so exp[log a + log b] needs no reduction."""
    exp = [0] * 62
    log = [0] * 32
    value = 1
    for i in range(31):
        exp[i] = exp[i + 31] = value
        log[value] = i
        value <<= 1
        if value & 0x20:
            value ^= 0x25
    return tuple(exp), tuple(log)


_EXP, _LOG = _gf32_tables()


def _mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _div(a: int, b: int) -> int:
    if a == 0:
        return 0
    return _EXP[(_LOG[a] - _LOG[b]) % 31]


def _syndromes(symbols: list[int]) -> tuple[int, int]:
    """S0 = sum c_i, S1 = sum c_i * alpha^i over GF(32) (addition is XOR)."""
    s0 = s1 = 0
    for i, c in enumerate(symbols):
        s0 ^= c
        s1 ^= _mul(c, _EXP[i])
    return s0, s1


def _check_symbols(data: list[int]) -> tuple[int, int]:
    """The two check symbols at positions 26, 27 that make both syndromes zero."""
    s0, s1 = _syndromes(data)
    a26, a27 = _EXP[DATA_CHARS], _EXP[DATA_CHARS + 1]
    # c26 + c27 = s0 and a26*c26 + a27*c27 = s1  =>  c27 = (s1 + a26*s0) / (a26 + a27).
    c27 = _div(s1 ^ _mul(a26, s0), a26 ^ a27)
    return s0 ^ c27, c27


def _encode_code(secret: bytes) -> str:
    value = int.from_bytes(secret, "big")
    data = [(value >> (5 * (DATA_CHARS - 1 - i))) & 31 for i in range(DATA_CHARS)]
    symbols = data + list(_check_symbols(data))
    text = "".join(ALPHABET[s] for s in symbols)
    return "-".join(text[i : i + GROUP_SIZE] for i in range(0, CODE_LENGTH, GROUP_SIZE))


def _decode_code(code: str) -> bytes:
    if not isinstance(code, str):
        raise RecoveryCodeError("a recovery code is text")
    if len(code) > MAX_CODE_INPUT:
        raise RecoveryCodeError("this is far too long to be a recovery code")
    symbols: list[int] = []
    for ch in code:
        if ch in _IGNORED:
            continue
        value = _DECODE.get(ch.upper()) if ch.isascii() else None
        if value is None:
            # Never echo the character: it may be part of the secret.
            at = len(symbols) // GROUP_SIZE + 1
            raise RecoveryCodeError(
                f"a character in group {at} is not used in recovery codes "
                "(letters and digits only; there is no U)",
                group=at if at <= CODE_LENGTH // GROUP_SIZE else None,
            )
        symbols.append(value)
    if len(symbols) != CODE_LENGTH:
        group = _group_of_length_error(symbols)
        where = "" if group is None else f" (check group {group})"
        raise RecoveryCodeError(
            f"a recovery code has {CODE_LENGTH} characters in 7 groups of 4; "
            f"this one has {len(symbols)}" + where,
            group=group,
        )
    s0, s1 = _syndromes(symbols)
    if s0 or s1:
        group = _group(s0, s1, symbols)
        where = "" if group is None else f" (check group {group})"
        raise RecoveryCodeError("the recovery code has a typo" + where, group=group)
    if symbols[0] > 7:
        raise RecoveryCodeError("this is not a recovery code (first character out of range)", 1)
    value = 0
    for s in symbols[:DATA_CHARS]:
        value = (value << 5) | s
    return value.to_bytes(SECRET_SIZE, "big")


def _group(s0: int, s1: int, symbols: list[int]) -> int | None:
    """The 1-based group a typo most likely sits in, or None when it cannot be told.

    One substitution e at position j gives S0 = e, S1 = e * alpha^j, so j = log(S1 / S0).
    A swap of positions i, i+1 gives S0 = 0 and S1 = (r_i + r_{i+1}) * alpha^i * (1 + alpha),
    so every i that satisfies this is a candidate; the group is named only if all agree."""
    if s0 != 0:
        if s1 == 0:
            return None
        position = _LOG[_div(s1, s0)]
        return position // GROUP_SIZE + 1 if position < CODE_LENGTH else None
    factor = _EXP[1] ^ 1
    groups = {
        i // GROUP_SIZE + 1
        for i in range(CODE_LENGTH - 1)
        if _mul(_mul(symbols[i] ^ symbols[i + 1], _EXP[i]), factor) == s1
    }
    return groups.pop() if len(groups) == 1 else None


def _is_code(symbols: list[int]) -> bool:
    return symbols[0] <= 7 and _syndromes(symbols) == (0, 0)


def _group_of_length_error(symbols: list[int]) -> int | None:
    """For one character too many or too few, the group where deleting or inserting one
    character gives a valid code, if exactly one group does."""
    groups: set[int] = set()
    if len(symbols) == CODE_LENGTH + 1:
        for i in range(len(symbols)):
            if _is_code(symbols[:i] + symbols[i + 1 :]):
                groups.add(min(i // GROUP_SIZE + 1, CODE_LENGTH // GROUP_SIZE))
    elif len(symbols) == CODE_LENGTH - 1:
        for i in range(CODE_LENGTH):
            for value in range(32):
                if _is_code([*symbols[:i], value, *symbols[i:]]):
                    groups.add(i // GROUP_SIZE + 1)
    return groups.pop() if len(groups) == 1 else None


class CaseSecret:
    """A case's 128-bit secret: everything about the case key follows from it."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes | bytearray) or len(secret) != SECRET_SIZE:
            raise KeyFormatError(f"a case secret is exactly {SECRET_SIZE} bytes")
        self._secret = bytes(secret)

    @classmethod
    def generate(cls) -> CaseSecret:
        """A fresh random secret (thin helper over os.urandom)."""
        return cls(os.urandom(SECRET_SIZE))

    @classmethod
    def from_recovery_code(cls, code: str) -> CaseSecret:
        """Parse a recovery code as typed or read aloud: case, spaces, dashes and the
        O/0, I/L/1 confusions do not matter; a typo raises RecoveryCodeError(.group)."""
        return cls(_decode_code(code))

    def recovery_code(self) -> str:
        """``XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX``: 26 data + 2 check characters."""
        return _encode_code(self._secret)

    def to_bytes(self) -> bytes:
        """The raw 16 bytes (for the client's own encrypted storage only)."""
        return self._secret

    def signing_key(self) -> nacl.signing.SigningKey:
        """The Ed25519 case key: seed = HKDF-SHA256(secret, salt, info, 32)."""
        seed = HKDF(hashes.SHA256(), 32, CASE_KEY_SALT, CASE_KEY_INFO).derive(self._secret)
        return nacl.signing.SigningKey(seed)

    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key of the case."""
        return bytes(self.signing_key().verify_key)

    def case_id(self) -> str:
        """The case id of this secret's key."""
        return case_id(self.public_key())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CaseSecret):
            return NotImplemented
        return hmac.compare_digest(self._secret, other._secret)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "CaseSecret(<redacted>)"


def case_id(public_key: bytes | nacl.signing.VerifyKey) -> str:
    """16 Crockford base32 characters: the first 80 bits of SHA-256(domain || public key)."""
    raw = bytes(public_key)
    if len(raw) != 32:
        raise KeyFormatError("a case public key is 32 bytes")
    value = int.from_bytes(hashlib.sha256(CASE_ID_DOMAIN + raw).digest()[:10], "big")
    return "".join(ALPHABET[(value >> (5 * (CASE_ID_LENGTH - 1 - i))) & 31] for i in range(16))


def parse_case_id(text: str) -> str:
    """The canonical case id for one typed by a person (case, dashes, spaces, O/I/L ignored)."""
    if not isinstance(text, str) or len(text) > 64:
        raise MalformedError("a case id is 16 characters")
    out: list[str] = []
    for ch in text:
        if ch in _IGNORED:
            continue
        value = _DECODE.get(ch.upper()) if ch.isascii() else None
        if value is None:
            raise MalformedError("a case id uses only Crockford base32 characters")
        out.append(ALPHABET[value])
    if len(out) != CASE_ID_LENGTH:
        raise MalformedError(f"a case id is {CASE_ID_LENGTH} characters, not {len(out)}")
    return "".join(out)
