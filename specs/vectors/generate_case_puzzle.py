"""Generate the case puzzle vectors in specs/vectors/case-puzzle/ (specs/case-puzzle.md).

Deterministic: the hub key, case keys and epochs are fixed, and solutions are the first nonce
from 0 upward, so running this twice writes identical files (tests/test_case_puzzle.py checks
both the files and that regeneration is byte-identical). Each record is one case with its
expected outcome: the expected values, or ``"error"``, the crypto.errors class it must raise.
Small scrypt parameters keep the files quick to check; one record uses the hub's defaults.

Usage: python specs/vectors/generate_case_puzzle.py   (from the repository root)
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from crypto import puzzle  # noqa: E402
from crypto.errors import CryptoError  # noqa: E402

OUT = Path(__file__).resolve().parent / "case-puzzle"
Record = dict[str, Any]


def fixed(label: str, size: int = 32) -> bytes:
    """Deterministic 'random' bytes for vectors."""
    return hashlib.sha256(b"ncii-exchange test vectors/" + label.encode()).digest()[:size]


def error_of(fn: Callable[[], object]) -> str:
    try:
        fn()
    except CryptoError as exc:
        return type(exc).__name__
    raise AssertionError("expected an error, got none")


MASTER = fixed("case puzzle master key")
KEY = puzzle.challenge_key(MASTER)
OTHER_KEY = puzzle.challenge_key(fixed("case puzzle other hub master key"))
CASE_KEY = fixed("case puzzle case public key 1")
OTHER_CASE_KEY = fixed("case puzzle case public key 2")
EPOCH = 2_945_376  # 2026-01-01T00:00:00Z in 600-second epochs


def solved(key: bytes, epoch: int, params: puzzle.PuzzleParams, public_key: bytes) -> Record:
    challenge = puzzle.issue_challenge(key, epoch, params)
    nonce = puzzle.solve(challenge, public_key)
    return {
        "challenge": challenge.encode().hex(),
        "public_key": public_key.hex(),
        "nonce": nonce,
        "input": puzzle.puzzle_input(challenge, public_key, nonce).hex(),
        "output": puzzle.work(challenge, public_key, nonce).hex(),
        "header": puzzle.encode_solution(challenge, nonce),
    }


def key_cases() -> list[Record]:
    return [
        {
            "id": "key/derive",
            "master_key": MASTER.hex(),
            "challenge_key": KEY.hex(),
        }
    ]


def challenge_cases() -> list[Record]:
    params = puzzle.PuzzleParams(difficulty=6, log2_n=10, r=8, p=1)
    good = puzzle.issue_challenge(KEY, EPOCH, params).encode()
    bad_version = b"\x02" + good[1:]
    return [
        {
            "id": "challenge/issue",
            "challenge_key": KEY.hex(),
            "epoch": EPOCH,
            "params": {"difficulty": 6, "log2_n": 10, "r": 8, "p": 1},
            "challenge": good.hex(),
        },
        {"id": "challenge/bad/short", "bytes": good[:-1].hex(), "error": "MalformedError"},
        {"id": "challenge/bad/version", "bytes": bad_version.hex(), "error": "MalformedError"},
        {
            "id": "challenge/bad/log2n-zero",
            "bytes": (good[:10] + b"\x00" + good[11:]).hex(),
            "error": "MalformedError",
        },
        {
            "id": "challenge/bad/too-much-memory",
            "bytes": (good[:10] + bytes([20, 32]) + good[12:]).hex(),
            "error": "MalformedError",
        },
    ]


def verify_cases() -> list[Record]:
    """Whole checks as the hub makes them: (header, public key, current epoch) -> ok or error."""
    small = puzzle.PuzzleParams(difficulty=8, log2_n=4, r=1, p=1)
    default = puzzle.PuzzleParams(difficulty=6, log2_n=10, r=8, p=1)
    zero = puzzle.PuzzleParams(difficulty=0, log2_n=4, r=1, p=1)
    good = solved(KEY, EPOCH, small, CASE_KEY)
    challenge = puzzle.parse_challenge(bytes.fromhex(good["challenge"]))
    base = {"challenge_key": KEY.hex(), "public_key": CASE_KEY.hex()}
    out: list[Record] = [
        {"id": "verify/ok/small", **base, **good, "current_epoch": EPOCH},
        {
            "id": "verify/ok/previous-epoch",
            **base,
            "header": good["header"],
            "current_epoch": EPOCH + 1,
        },
        {
            "id": "verify/ok/default-params",
            **base,
            **solved(KEY, EPOCH, default, CASE_KEY),
            "current_epoch": EPOCH,
        },
        {
            "id": "verify/ok/difficulty-zero",
            **base,
            **solved(KEY, EPOCH, zero, CASE_KEY),
            "current_epoch": EPOCH,
        },
    ]
    # a nonce that does not reach the difficulty: the first one after the solution that fails
    wrong = good["nonce"] + 1
    while True:
        try:
            puzzle.check_solution(challenge, CASE_KEY, wrong)
        except CryptoError:
            break
        wrong += 1
    bad_nonce = puzzle.encode_solution(challenge, wrong)
    forged = puzzle.Challenge(EPOCH, puzzle.PuzzleParams(0, 4, 1, 1), challenge.mac)
    other_hub = puzzle.issue_challenge(OTHER_KEY, EPOCH, small)
    negative = [
        ("verify/bad/nonce", bad_nonce, CASE_KEY, EPOCH),
        ("verify/bad/wrong-key", good["header"], OTHER_CASE_KEY, EPOCH),
        ("verify/bad/expired", good["header"], CASE_KEY, EPOCH + 2),
        ("verify/bad/future", good["header"], CASE_KEY, EPOCH - 1),
        (
            "verify/bad/lowered-difficulty",
            puzzle.encode_solution(forged, good["nonce"]),
            CASE_KEY,
            EPOCH,
        ),
        (
            "verify/bad/other-hub",
            puzzle.encode_solution(other_hub, good["nonce"]),
            CASE_KEY,
            EPOCH,
        ),
        ("verify/bad/uppercase", good["header"].upper(), CASE_KEY, EPOCH),
        ("verify/bad/no-dot", good["header"].replace(".", "0"), CASE_KEY, EPOCH),
        ("verify/bad/short", good["header"][:-1], CASE_KEY, EPOCH),
        ("verify/bad/empty", "", CASE_KEY, EPOCH),
    ]
    for name, header, public_key, epoch in negative:
        out.append(
            {
                "id": name,
                "challenge_key": KEY.hex(),
                "public_key": public_key.hex(),
                "header": header,
                "current_epoch": epoch,
                "error": error_of(
                    lambda h=header, k=public_key, e=epoch: puzzle.verify(KEY, h, k, e)
                ),
            }
        )
    return out


BUILDERS: dict[str, Callable[[], list[Record]]] = {
    "key.json": key_cases,
    "challenge.json": challenge_cases,
    "verify.json": verify_cases,
}


def render(cases: list[Record]) -> str:
    return json.dumps({"version": 1, "cases": cases}, indent=1, ensure_ascii=True) + "\n"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for filename, build in BUILDERS.items():
        cases = build()
        (OUT / filename).write_text(render(cases), encoding="utf-8")
        print(f"wrote case-puzzle/{filename}: {len(cases)} cases")


if __name__ == "__main__":
    main()
