"""The case puzzle: a memory-hard cost for creating a case, bound to its key (specs/case-puzzle.md).

Anyone may create a case without an identity, so creating one must cost the creator something
the hub can check cheaply. The hub issues a stateless challenge (an HMAC of its epoch and the
puzzle parameters under a key only it holds); the client searches a nonce such that
scrypt(challenge || case public key || nonce) starts with ``difficulty`` zero bits. Solving
takes about 2**difficulty scrypt evaluations, checking takes one. scrypt (RFC 7914, through
hashlib/OpenSSL) makes each evaluation need ``128 * r * n`` bytes of memory, so special hardware
gains less than it would against a plain hash.

Pure: times are epochs passed in by the caller, keys are bytes; nothing here reads a clock.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crypto._common import MAX_INT63
from crypto.errors import (
    MalformedError,
    PuzzleCancelledError,
    PuzzleExpiredError,
    PuzzleInvalidError,
)

__all__ = [
    "CHALLENGE_SIZE",
    "HEADER_NAME",
    "KEY_SIZE",
    "NONCE_SIZE",
    "Challenge",
    "PuzzleParams",
    "challenge_key",
    "check_challenge",
    "check_solution",
    "encode_solution",
    "expected_attempts",
    "issue_challenge",
    "parse_challenge",
    "parse_solution",
    "puzzle_input",
    "solve",
    "verify",
    "work",
]

VERSION: Final = 1
HEADER_NAME: Final = "NCII-Case-Puzzle"
"""The HTTP header that carries ``challenge-hex "." nonce-hex`` with a case's first submission."""
SALT: Final = b"ncii-exchange/case-puzzle/v1"
"""scrypt's salt: a fixed domain label, so this work is useful for nothing else."""
MAC_LABEL: Final = b"ncii-exchange/case-puzzle/challenge/v1\x00"
KEY_INFO: Final = b"ncii-exchange/hub/case-puzzle-key/v1"
KEY_SIZE: Final = 32
MAC_SIZE: Final = 16
FIELDS_SIZE: Final = 1 + 8 + 1 + 1 + 1 + 1  # version, epoch, difficulty, log2 n, r, p
CHALLENGE_SIZE: Final = FIELDS_SIZE + MAC_SIZE  # 29
NONCE_SIZE: Final = 8
PUBLIC_KEY_SIZE: Final = 32
OUTPUT_SIZE: Final = 32

MAX_DIFFICULTY: Final = 32
MAX_LOG2_N: Final = 20
MAX_R: Final = 32
MAX_P: Final = 16
MAX_MEMORY: Final = 64 << 20
"""Most bytes one scrypt evaluation may need (128 * r * n); a client refuses a challenge asking
for more, so a hostile hub cannot make a phone allocate without bound."""

Progress = Callable[[int, float], None]
"""Called with (attempts so far, expected attempts) while solving."""


@dataclass(frozen=True, slots=True)
class PuzzleParams:
    """How hard a puzzle is: leading zero bits wanted, and scrypt's cost parameters."""

    difficulty: int
    log2_n: int
    r: int
    p: int

    def __post_init__(self) -> None:
        for name, value, low, high in (
            ("difficulty", self.difficulty, 0, MAX_DIFFICULTY),
            ("log2_n", self.log2_n, 1, MAX_LOG2_N),
            ("r", self.r, 1, MAX_R),
            ("p", self.p, 1, MAX_P),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise MalformedError(f"puzzle {name} must be an integer from {low} to {high}")
        if self.memory > MAX_MEMORY:
            raise MalformedError(
                f"puzzle scrypt parameters need {self.memory} bytes of memory, more than "
                f"the {MAX_MEMORY} allowed"
            )

    @property
    def n(self) -> int:
        """scrypt's N (CPU/memory cost), a power of two."""
        return 1 << self.log2_n

    @property
    def memory(self) -> int:
        """Bytes one scrypt evaluation needs (128 * r * N)."""
        return 128 * self.r * self.n


@dataclass(frozen=True, slots=True)
class Challenge:
    """A challenge as issued by a hub: epoch, parameters and the hub's MAC over them."""

    epoch: int
    params: PuzzleParams
    mac: bytes

    def fields(self) -> bytes:
        """The 13 bytes the MAC covers: version, epoch (u64), difficulty, log2 n, r, p."""
        p = self.params
        return (
            bytes([VERSION])
            + self.epoch.to_bytes(8, "big")
            + bytes([p.difficulty, p.log2_n, p.r, p.p])
        )

    def encode(self) -> bytes:
        """The 29-byte challenge (specs/case-puzzle.md section 3.1)."""
        return self.fields() + self.mac


def challenge_key(master_key: bytes) -> bytes:
    """The hub's challenge MAC key, derived from its master key (HKDF-SHA256, own label), so
    every hub process sharing the master key issues and accepts the same challenges."""
    if len(master_key) < 16:
        raise MalformedError("the master key must be at least 16 bytes")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=KEY_INFO).derive(
        master_key
    )


def _mac(key: bytes, fields: bytes) -> bytes:
    if len(key) != KEY_SIZE:
        raise MalformedError(f"the challenge key must be {KEY_SIZE} bytes")
    return hmac.new(key, MAC_LABEL + fields, hashlib.sha256).digest()[:MAC_SIZE]


def issue_challenge(key: bytes, epoch: int, params: PuzzleParams) -> Challenge:
    """The challenge for ``epoch`` at ``params``: the same inputs always give the same bytes,
    so the hub keeps no per-challenge state."""
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= MAX_INT63:
        raise MalformedError("puzzle epoch must be an integer from 0 to 2^63-1")
    unsigned = Challenge(epoch, params, b"")
    return Challenge(epoch, params, _mac(key, unsigned.fields()))


def parse_challenge(data: bytes) -> Challenge:
    """Read 29 challenge bytes; MalformedError for a wrong size, version or parameters."""
    if len(data) != CHALLENGE_SIZE:
        raise MalformedError(f"a puzzle challenge is exactly {CHALLENGE_SIZE} bytes")
    if data[0] != VERSION:
        raise MalformedError(f"unknown puzzle challenge version {data[0]}")
    epoch = int.from_bytes(data[1:9], "big")
    if epoch > MAX_INT63:
        raise MalformedError("puzzle epoch must be at most 2^63-1")
    params = PuzzleParams(data[9], data[10], data[11], data[12])
    return Challenge(epoch, params, bytes(data[FIELDS_SIZE:]))


def check_challenge(key: bytes, challenge: Challenge, current_epoch: int) -> None:
    """Raise unless this hub issued ``challenge`` (MAC, constant-time) for the current or the
    previous epoch. A MAC failure is checked first so a forged challenge never reads as expired."""
    if not hmac.compare_digest(_mac(key, challenge.fields()), challenge.mac):
        raise PuzzleInvalidError("this puzzle challenge was not issued by this hub")
    if challenge.epoch not in (current_epoch, current_epoch - 1):
        raise PuzzleExpiredError("this puzzle challenge has expired; fetch a fresh one")


def puzzle_input(challenge: Challenge, public_key: bytes, nonce: int) -> bytes:
    """scrypt's password: challenge (29) || case public key (32) || nonce (u64 big-endian)."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise MalformedError(f"a case public key is {PUBLIC_KEY_SIZE} bytes")
    if isinstance(nonce, bool) or not isinstance(nonce, int) or not 0 <= nonce < 1 << 64:
        raise MalformedError("puzzle nonce must be an integer from 0 to 2^64-1")
    return challenge.encode() + public_key + nonce.to_bytes(NONCE_SIZE, "big")


def work(challenge: Challenge, public_key: bytes, nonce: int) -> bytes:
    """One scrypt evaluation: 32 bytes, of which the leading ``difficulty`` bits must be 0."""
    p = challenge.params
    return hashlib.scrypt(
        puzzle_input(challenge, public_key, nonce),
        salt=SALT,
        n=p.n,
        r=p.r,
        p=p.p,
        maxmem=p.memory * 2 + (1 << 20),
        dklen=OUTPUT_SIZE,
    )


def _meets(output: bytes, difficulty: int) -> bool:
    return int.from_bytes(output, "big") >> (8 * OUTPUT_SIZE - difficulty) == 0


def check_solution(challenge: Challenge, public_key: bytes, nonce: int) -> None:
    """Raise PuzzleInvalidError unless ``nonce`` solves ``challenge`` for ``public_key``."""
    if not _meets(work(challenge, public_key, nonce), challenge.params.difficulty):
        raise PuzzleInvalidError("this nonce does not solve the puzzle for this case key")


def verify(key: bytes, header_value: str, public_key: bytes, current_epoch: int) -> Challenge:
    """The hub's whole check, cheapest step first: parse, MAC, epoch, then one scrypt.
    Returns the verified challenge; raises MalformedError, PuzzleInvalidError or
    PuzzleExpiredError."""
    challenge, nonce = parse_solution(header_value)
    check_challenge(key, challenge, current_epoch)
    check_solution(challenge, public_key, nonce)
    return challenge


def expected_attempts(difficulty: int) -> float:
    """Mean scrypt evaluations to find a solution (geometric distribution): 2**difficulty."""
    return float(1 << difficulty)


def solve(
    challenge: Challenge,
    public_key: bytes,
    *,
    start: int = 0,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> int:
    """Search nonces from ``start`` upward; returns the first that solves the puzzle.

    ``progress(attempts, expected)`` is called after each attempt; ``cancelled()`` is asked
    before each one and, once true, stops the search with PuzzleCancelledError."""
    expected = expected_attempts(challenge.params.difficulty)
    nonce = start
    attempts = 0
    while nonce < 1 << 64:
        if cancelled is not None and cancelled():
            raise PuzzleCancelledError("solving the case puzzle was cancelled")
        output = work(challenge, public_key, nonce)
        attempts += 1
        if progress is not None:
            progress(attempts, expected)
        if _meets(output, challenge.params.difficulty):
            return nonce
        nonce += 1
    raise PuzzleInvalidError("no nonce solves this puzzle")  # pragma: no cover: 2^64 tries


def encode_solution(challenge: Challenge, nonce: int) -> str:
    """The header value: 58 hex digits of challenge, ".", 16 hex digits of nonce (lowercase)."""
    if isinstance(nonce, bool) or not isinstance(nonce, int) or not 0 <= nonce < 1 << 64:
        raise MalformedError("puzzle nonce must be an integer from 0 to 2^64-1")
    return challenge.encode().hex() + "." + nonce.to_bytes(NONCE_SIZE, "big").hex()


_HEX = frozenset("0123456789abcdef")
SOLUTION_LENGTH: Final = 2 * CHALLENGE_SIZE + 1 + 2 * NONCE_SIZE


def parse_solution(value: str) -> tuple[Challenge, int]:
    """Read a header value; MalformedError unless it is exactly the lowercase form above."""
    if len(value) != SOLUTION_LENGTH or value[2 * CHALLENGE_SIZE] != ".":
        raise MalformedError(
            f"the {HEADER_NAME} header is {2 * CHALLENGE_SIZE} hex digits, '.', "
            f"{2 * NONCE_SIZE} hex digits"
        )
    left, right = value[: 2 * CHALLENGE_SIZE], value[2 * CHALLENGE_SIZE + 1 :]
    if not set(left) <= _HEX or not set(right) <= _HEX:
        raise MalformedError(f"the {HEADER_NAME} header must be lowercase hex")
    return parse_challenge(bytes.fromhex(left)), int(right, 16)
