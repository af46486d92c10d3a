"""The case puzzle over real HTTP (specs/case-puzzle.md), on SQLite and PostgreSQL.

Small scrypt parameters keep each solve to milliseconds; the rules are the same at any size.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubkit import ENVELOPE_TYPE, Case, HubFactory, HubProcess, mixed_hashes, post

from crypto import puzzle
from crypto.errors import PuzzleInvalidError
from hub.settings import Settings, SettingsError

SMALL = (
    "--set",
    "puzzle=true",
    "--set",
    "puzzle_difficulty=3",
    "--set",
    "puzzle_scrypt_n=16",
    "--set",
    "puzzle_scrypt_r=1",
)


@pytest.fixture(scope="module")
def small_hub(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubProcess]:
    """One puzzle hub per module and database: its tests each use fresh cases (a handful in
    all, far below puzzle_normal_cases, so the difficulty stays at 3)."""
    data: Path = tmp_path_factory.mktemp("puzzle") / "data"
    fast = ("--set", "batch_interval=0.05", "--set", "lock_retry_seconds=0.2")  # as hub_factory's
    hub = HubProcess(data, module_database_url, (*fast, *SMALL)).start()
    yield hub
    hub.kill()


def fetch(client: httpx.Client) -> dict[str, Any]:
    r = client.get("/v1/case-puzzle")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return dict(r.json())


def solution_for(client: httpx.Client, case: Case) -> str:
    answer = fetch(client)
    challenge = puzzle.parse_challenge(bytes.fromhex(answer["challenge"]))
    public_key = case.secret.public_key()
    return puzzle.encode_solution(challenge, puzzle.solve(challenge, public_key))


def post_with(client: httpx.Client, raw: bytes, solution: str | bytes | None) -> httpx.Response:
    headers: dict[str, str | bytes] = {"Content-Type": ENVELOPE_TYPE}
    if solution is not None:
        headers[puzzle.HEADER_NAME] = solution
    return client.post("/v1/submissions", content=raw, headers=headers)


def test_challenge_answer_says_what_to_solve(small_hub: HubProcess) -> None:
    hub = small_hub
    with hub.client() as client:
        answer = fetch(client)
    assert answer["v"] == 1 and answer["required"] is True
    assert answer["difficulty"] == 3
    assert answer["scrypt"] == {"n": 16, "r": 1, "p": 1}
    assert answer["header"] == "NCII-Case-Puzzle"
    challenge = puzzle.parse_challenge(bytes.fromhex(answer["challenge"]))
    assert challenge.params == puzzle.PuzzleParams(3, 4, 1, 1)
    assert answer["expires_at"] == (challenge.epoch + 2) * 600
    assert answer["expires_at"] - 1200 <= time.time() < answer["expires_at"] - 600


def test_new_case_needs_a_solution_existing_case_does_not(small_hub: HubProcess) -> None:
    hub = small_hub
    case = Case()
    with hub.client() as client:
        refused = post(client, "/v1/submissions", case.submission(mixed_hashes(2)))
        assert refused.status_code == 428, refused.text
        error = refused.json()["error"]
        assert error["code"] == "puzzle_required"
        assert "/v1/case-puzzle" in error["message"] and "NCII-Case-Puzzle" in error["message"]

        raw = case.submission(mixed_hashes(2))
        accepted = post_with(client, raw, solution_for(client, case))
        assert accepted.status_code == 202, accepted.text
        # the identical retry (lost answer) gets the stored answer, with or without a solution
        again = post(client, "/v1/submissions", raw)
        assert again.status_code == 202 and again.content == accepted.content
        # later submissions of the same case need none
        more = post(client, "/v1/submissions", case.submission(mixed_hashes(3)))
        assert more.status_code == 202, more.text


def test_wrong_solutions_are_refused(small_hub: HubProcess) -> None:
    """A solution for one key replayed for another key, a forged challenge, garbage."""
    hub = small_hub
    first, second = Case(), Case()
    with hub.client() as client:
        solution = solution_for(client, first)
        ok = post_with(client, first.submission(mixed_hashes(1)), solution)
        assert ok.status_code == 202, ok.text
        # replayed for another case key: it solves nothing for that key (bit-exact chance of a
        # false accept is 1/8 at difficulty 3, so try keys until one would not pass by luck)
        challenge, nonce = puzzle.parse_solution(solution)
        other = second
        while True:
            try:
                puzzle.check_solution(challenge, other.secret.public_key(), nonce)
            except PuzzleInvalidError:
                break
            other = Case()
        stolen = post_with(client, other.submission(mixed_hashes(1)), solution)
        assert stolen.status_code == 403, stolen.text
        assert stolen.json()["error"]["code"] == "puzzle_invalid"

        easy = puzzle.Challenge(challenge.epoch, puzzle.PuzzleParams(0, 4, 1, 1), challenge.mac)
        forged = post_with(
            client, second.submission(mixed_hashes(1)), puzzle.encode_solution(easy, 0)
        )
        assert forged.status_code == 403
        assert forged.json()["error"]["code"] == "puzzle_invalid"

        for junk in ("", "x" * 75, solution.upper(), solution + "0", "é".encode() * 10):
            r = post_with(client, second.submission(mixed_hashes(1)), junk)
            assert r.status_code == 403, (junk, r.text)
            assert r.json()["error"]["code"] == "puzzle_invalid"
        # nothing of the refused cases was stored
        status = post(client, "/v1/status", second.status_query())
        assert status.status_code == 404, status.text


def test_expired_challenge(small_hub: HubProcess) -> None:
    """A challenge two epochs old is refused with puzzle_expired; one from the previous epoch
    is accepted. (Made with the hub's own key, read from its data directory, as the hub would
    have issued them 20 and 10 minutes ago.)"""
    hub = small_hub
    case = Case()
    from crypto.puzzle import challenge_key

    master = bytes.fromhex((hub.data_dir / "master.key").read_text().strip())
    old = puzzle.issue_challenge(
        challenge_key(master), int(time.time()) // 600 - 2, puzzle.PuzzleParams(3, 4, 1, 1)
    )
    solution = puzzle.encode_solution(old, puzzle.solve(old, case.secret.public_key()))
    with hub.client() as client:
        r = post_with(client, case.submission(mixed_hashes(1)), solution)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "puzzle_expired"
        previous = puzzle.issue_challenge(challenge_key(master), old.epoch + 1, old.params)
        nonce = puzzle.solve(previous, case.secret.public_key())
        solution = puzzle.encode_solution(previous, nonce)
        r = post_with(client, case.submission(mixed_hashes(1)), solution)
        assert r.status_code == 202, r.text


def test_difficulty_rises_under_a_burst_of_new_cases(hub_factory: HubFactory) -> None:
    """Counted in the database: a second hub process on it sees the same load."""
    burst = (*SMALL, "--set", "puzzle_normal_cases=2", "--set", "puzzle_max_difficulty=6")
    hub = hub_factory(*burst)
    two = hub_factory(*burst, data_dir=hub.data_dir)
    with hub.client() as client:
        assert fetch(client)["difficulty"] == 3
        for _ in range(5):  # 5 new cases > 2 * 2: two doublings beyond normal
            case = Case()
            r = post_with(client, case.submission(mixed_hashes(1)), solution_for(client, case))
            assert r.status_code == 202, r.text
        seen = _await_difficulty(client, 5)
    with two.client() as other:
        assert _await_difficulty(other, 5) == seen
        # a challenge of one process is accepted by the other (shared master key)
        case = Case()
        with hub.client() as client:
            solution = solution_for(client, case)
        r = post_with(other, case.submission(mixed_hashes(1)), solution)
        assert r.status_code == 202, r.text


def _await_difficulty(client: httpx.Client, wanted: int) -> int:
    deadline = time.monotonic() + 10
    while True:
        got = int(fetch(client)["difficulty"])
        if got == wanted or time.monotonic() > deadline:
            assert got == wanted
            return got
        time.sleep(0.2)


def test_puzzle_off_asks_nothing(hub_factory: HubFactory) -> None:
    hub = hub_factory()  # test hubs default to puzzle=false
    with hub.client() as client:
        assert fetch(client)["required"] is False
        r = post(client, "/v1/submissions", Case().submission(mixed_hashes(1)))
        assert r.status_code == 202, r.text


def test_settings_refuse_unusable_puzzle_parameters() -> None:
    """Values a client would refuse (or that make no sense) stop the hub at start."""
    for bad in (
        {"puzzle_scrypt_n": 1000},  # not a power of two
        {"puzzle_scrypt_n": 1 << 17},
        {"puzzle_scrypt_n": 1 << 16, "puzzle_scrypt_r": 16},  # 128 MiB per try
        {"puzzle_difficulty": 25},
        {"puzzle_difficulty": 8, "puzzle_max_difficulty": 7},
        {"puzzle_epoch_seconds": 10},
    ):
        with pytest.raises(SettingsError):
            Settings(**bad)  # type: ignore[arg-type]
    assert Settings().puzzle and Settings().puzzle_difficulty == 6
