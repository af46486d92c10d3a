"""The client and the case puzzle (specs/case-puzzle.md) against a real hub over HTTP.

The hubs here ask the puzzle at small scrypt parameters (tests/client/conftest.py); the code
path is the one a phone or laptop takes at the hub's defaults.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from clientkit import make_photos, run_cli
from hubkit import HubProcess

from client.bundle import Bundle
from client.hub import HubSession
from client.plan import SubmissionPlan
from client.puzzle import PUZZLE_FILE, load_cached
from client.store import ClientHome
from crypto import puzzle
from crypto.case import CaseSecret
from crypto.envelope import seal_now

HARDER = ("--set", "puzzle_difficulty=6")  # 64 tries expected: enough to see progress


def _plan(n: int = 2) -> SubmissionPlan:
    hashes = tuple({"algorithm": "sha256", "hash": f"{i + 1:064x}"} for i in range(n))
    return SubmissionPlan(hashes, ())


def test_cli_solves_before_the_first_submission_quietly_under_json(
    own_hub: Callable[..., HubProcess], tmp_path: Path
) -> None:
    hub: HubProcess = own_hub(*HARDER)
    home = tmp_path / "home"
    made = run_cli("case", "new", "--json", home=home)
    case_id = json.loads(made.out)["case_id"]
    photos = tmp_path / "photos"
    make_photos(photos)
    sent = run_cli("submit", str(photos), "--hub", hub.url, "--yes", "--json", home=home,
                   subprocess_=True)  # fmt: skip
    assert sent.code == 0, sent.err
    assert json.loads(sent.out)["sent"] > 0
    assert "puzzle" not in sent.err  # --json: no chatter about it on stderr either
    saved = home / "cases" / case_id / PUZZLE_FILE
    assert saved.stat().st_mode & 0o777 == 0o600
    assert json.loads(saved.read_text())["hub"] == hub.url
    # without --json the person is told what the wait is for
    other = tmp_path / "other"
    run_cli("case", "new", "--json", home=other)
    plain = run_cli("submit", str(photos), "--hub", hub.url, "--yes", home=other,
                    subprocess_=True)  # fmt: skip
    assert plain.code == 0, plain.err
    assert "puzzle" in plain.out


def test_an_interrupted_submit_does_not_solve_again(
    own_hub: Callable[..., HubProcess], tmp_path: Path
) -> None:
    """Solved, then the connection broke before the submission: the next run sends the saved
    solution and creates the one case."""
    hub: HubProcess = own_hub(*HARDER)
    home = ClientHome.open(tmp_path / "home")
    case = home.create_case()
    secret = home.load_secret(case.case_id)
    tries: list[int] = []
    with HubSession(hub.url, home, allow_insecure_http=True,
                    puzzle_progress=lambda done, _exp: tries.append(done)) as session:  # fmt: skip
        session.connect()
        session._prepare_puzzle(secret.public_key())  # then the process dies
    assert tries, "the puzzle was solved"
    assert load_cached(home, case.case_id, hub.url, int(time.time())) is not None
    again: list[int] = []
    with HubSession(hub.url, home, allow_insecure_http=True,
                    puzzle_progress=lambda done, _exp: again.append(done)) as session:  # fmt: skip
        session.connect()
        result = session.submit(case.case_id, _plan())
    assert len(result.entries) == 2
    assert again == []  # the saved solution was used


def test_an_expired_saved_solution_is_solved_again_once(
    own_hub: Callable[..., HubProcess], tmp_path: Path
) -> None:
    """The saved solution's challenge expired at the hub (clock or long pause): the hub says
    puzzle_expired, the client fetches a fresh challenge, solves it and sends the same bytes."""
    hub: HubProcess = own_hub()
    home = ClientHome.open(tmp_path / "home")
    case = home.create_case()
    secret = home.load_secret(case.case_id)
    master = bytes.fromhex((hub.data_dir / "master.key").read_text().strip())
    stale = puzzle.issue_challenge(
        puzzle.challenge_key(master), int(time.time()) // 600 - 3, puzzle.PuzzleParams(2, 4, 1, 1)
    )
    header = puzzle.encode_solution(stale, puzzle.solve(stale, secret.public_key()))
    folder = home.cases_dir / case.case_id
    folder.mkdir(mode=0o700, exist_ok=True)
    # the file claims a later expiry than the hub grants (as with a wrong clock here)
    record = {"v": 1, "hub": hub.url, "solution": header, "expires_at": int(time.time()) + 999}
    (folder / PUZZLE_FILE).write_text(json.dumps(record))
    with HubSession(hub.url, home, allow_insecure_http=True) as session:
        session.connect()
        result = session.submit(case.case_id, _plan())
    assert len(result.entries) == 2
    assert json.loads((folder / PUZZLE_FILE).read_text())["solution"] != header


def test_upload_of_a_bundle_for_a_new_case_solves_after_the_hub_asks(
    own_hub: Callable[..., HubProcess], tmp_path: Path
) -> None:
    """An offline bundle was signed without a challenge (no network); uploading it answers the
    hub's 428 with a solution for the bundle's key."""
    hub: HubProcess = own_hub()
    secret = CaseSecret.generate()
    body = json.dumps({"v": 1, "hashes": list(_plan().hashes)}).encode()
    raw = seal_now(secret.signing_key(), "submission", body, int(time.time()))
    bundle_file = tmp_path / "case.ncii"
    bundle_file.write_bytes(Bundle([raw]).encode())
    with httpx.Client(base_url=hub.url) as plain:
        refused = plain.post("/v1/submissions", content=raw,
                             headers={"Content-Type": "application/vnd.ncii.envelope"})  # fmt: skip
        assert refused.status_code == 428
    up = run_cli("upload", str(bundle_file), "--hub", hub.url, "--json",
                 home=tmp_path / "uploader")  # fmt: skip
    assert up.code == 0, up.err
    assert json.loads(up.out)["sent"] == 2
