"""The case puzzle (specs/case-puzzle.md): vectors, the solver's hooks, and attacks."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import protocolkit
import pytest

from crypto import puzzle
from crypto.errors import (
    MalformedError,
    PuzzleCancelledError,
    PuzzleExpiredError,
    PuzzleInvalidError,
)
from hub.puzzle import difficulty_for

VECTOR_DIR = Path(__file__).resolve().parents[1] / "specs" / "vectors"
KEY = bytes(range(32))
CASE = bytes(range(32, 64))
SMALL = puzzle.PuzzleParams(difficulty=3, log2_n=4, r=1, p=1)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_case_puzzle", VECTOR_DIR / "generate_case_puzzle.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _params(name: str) -> list[Any]:
    return protocolkit.params("case-puzzle", name)


# -- vectors --------------------------------------------------------------------------------


@pytest.mark.parametrize("case_", _params("key.json"))
def test_key_vector(case_: dict[str, Any]) -> None:
    key = puzzle.challenge_key(bytes.fromhex(case_["master_key"]))
    assert key.hex() == case_["challenge_key"]


@pytest.mark.parametrize("case_", _params("challenge.json"))
def test_challenge_vector(case_: dict[str, Any]) -> None:
    if "error" in case_:
        with pytest.raises(protocolkit.error_class(case_["error"])):
            puzzle.parse_challenge(bytes.fromhex(case_["bytes"]))
        return
    params = puzzle.PuzzleParams(**case_["params"])
    issued = puzzle.issue_challenge(bytes.fromhex(case_["challenge_key"]), case_["epoch"], params)
    assert issued.encode().hex() == case_["challenge"]
    assert puzzle.parse_challenge(issued.encode()) == issued


@pytest.mark.parametrize("case_", _params("verify.json"))
def test_verify_vector(case_: dict[str, Any]) -> None:
    key = bytes.fromhex(case_["challenge_key"])
    public_key = bytes.fromhex(case_["public_key"])

    def run() -> puzzle.Challenge:
        return puzzle.verify(key, case_["header"], public_key, case_["current_epoch"])

    if "error" in case_:
        with pytest.raises(protocolkit.error_class(case_["error"])) as info:
            run()
        assert type(info.value).__name__ == case_["error"]
        return
    challenge = run()
    if "nonce" in case_:
        nonce = case_["nonce"]
        assert challenge.encode().hex() == case_["challenge"]
        assert puzzle.puzzle_input(challenge, public_key, nonce).hex() == case_["input"]
        assert puzzle.work(challenge, public_key, nonce).hex() == case_["output"]
        assert puzzle.encode_solution(challenge, nonce) == case_["header"]
        # the solver finds the same first nonce
        assert puzzle.solve(challenge, public_key) == nonce


def test_vectors_regenerate_identically() -> None:
    gen = _generator()
    for filename, build in gen.BUILDERS.items():
        on_disk = (VECTOR_DIR / "case-puzzle" / filename).read_text(encoding="utf-8")
        assert gen.render(build()) == on_disk, filename


# -- behaviour ------------------------------------------------------------------------------


def test_solve_reports_progress_and_can_be_cancelled() -> None:
    challenge = puzzle.issue_challenge(KEY, 7, SMALL)
    seen: list[tuple[int, float]] = []
    nonce = puzzle.solve(challenge, CASE, progress=lambda done, exp: seen.append((done, exp)))
    puzzle.check_solution(challenge, CASE, nonce)
    assert [done for done, _ in seen] == list(range(1, nonce + 2))
    assert all(exp == 8.0 for _, exp in seen)
    asked = []

    def cancel() -> bool:
        asked.append(1)
        return len(asked) > 2

    hard = puzzle.issue_challenge(KEY, 7, puzzle.PuzzleParams(24, 4, 1, 1))
    with pytest.raises(PuzzleCancelledError):
        puzzle.solve(hard, CASE, cancelled=cancel)
    assert len(asked) == 3


def test_solution_is_bound_to_the_case_key_and_the_challenge() -> None:
    """An attacker reuses one solution for another case key, or for another epoch."""
    challenge = puzzle.issue_challenge(KEY, 7, puzzle.PuzzleParams(12, 4, 1, 1))
    nonce = puzzle.solve(challenge, CASE)
    header = puzzle.encode_solution(challenge, nonce)
    puzzle.verify(KEY, header, CASE, 7)
    other = bytes(32)
    with pytest.raises(PuzzleInvalidError):
        puzzle.verify(KEY, header, other, 7)
    later = puzzle.issue_challenge(KEY, 8, challenge.params)
    with pytest.raises(PuzzleInvalidError):
        puzzle.verify(KEY, puzzle.encode_solution(later, nonce), CASE, 8)


def test_a_forged_challenge_is_invalid_not_expired() -> None:
    """A challenge with a bad MAC must not be told apart by its epoch (MAC first)."""
    challenge = puzzle.issue_challenge(KEY, 7, SMALL)
    forged = puzzle.Challenge(100, SMALL, challenge.mac)
    with pytest.raises(PuzzleInvalidError):
        puzzle.check_challenge(KEY, forged, 7)
    with pytest.raises(PuzzleExpiredError):
        puzzle.check_challenge(KEY, challenge, 9)


@pytest.mark.parametrize(
    "fields",
    [(33, 4, 1, 1), (3, 0, 1, 1), (3, 21, 1, 1), (3, 4, 0, 1), (3, 4, 1, 17), (3, 20, 32, 1)],
    ids=["difficulty", "n-zero", "n-huge", "r-zero", "p-huge", "memory"],
)
def test_parameters_out_of_bounds_are_refused(fields: tuple[int, int, int, int]) -> None:
    """A hostile hub cannot make a client allocate or loop without bound."""
    with pytest.raises(MalformedError):
        puzzle.PuzzleParams(*fields)


def test_nonce_and_key_sizes_are_checked() -> None:
    challenge = puzzle.issue_challenge(KEY, 7, SMALL)
    with pytest.raises(MalformedError):
        puzzle.puzzle_input(challenge, CASE[:31], 0)
    with pytest.raises(MalformedError):
        puzzle.puzzle_input(challenge, CASE, 1 << 64)
    with pytest.raises(MalformedError):
        puzzle.encode_solution(challenge, -1)
    with pytest.raises(MalformedError):
        puzzle.issue_challenge(KEY[:31], 7, SMALL)


@pytest.mark.parametrize(
    ("new_cases", "expected"),
    [(0, 5), (100, 5), (101, 6), (200, 6), (201, 7), (400, 7), (401, 8), (10**9, 12)],
)
def test_difficulty_rises_one_bit_per_doubling(new_cases: int, expected: int) -> None:
    assert difficulty_for(new_cases, 100, 5, 12) == expected  # base 5 here, 6 by default
