"""The case puzzle, client side: read the hub's challenge, solve it, keep the solution.

A hub asks a solved puzzle of the submission that creates a case (specs/case-puzzle.md). The
solution is bound to the case's public key and the hub's challenge, so it is worth keeping:
it is saved in the case folder (``cases/<id>/puzzle.json``, 0600) until its challenge expires,
so a submit that is interrupted and run again sends the same solution instead of solving again.
It holds nothing secret (the hub sees it anyway) but is kept private like the rest of the case.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from client.errors import HubProtocolError, StoreError
from client.fsutil import atomic_write, ensure_private_dir, read_limited
from client.store import ClientHome
from crypto import boundedjson, puzzle
from crypto.errors import MalformedError

__all__ = ["PUZZLE_FILE", "Solved", "load_cached", "save_cached", "solve_answer"]

PUZZLE_FILE = "puzzle.json"
EXPIRY_MARGIN = 30  # seconds: a cached solution this close to expiry is not used


@dataclass(frozen=True, slots=True)
class Solved:
    """A solution ready to send: the header value and when its challenge expires (hub time)."""

    hub: str
    header: str
    expires_at: int


def solve_answer(
    answer: Mapping[str, Any],
    public_key: bytes,
    *,
    hub: str,
    progress: puzzle.Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Solved:
    """Solve the challenge of a GET /v1/case-puzzle answer for ``public_key``.

    The challenge bytes are authoritative (the hub checks those): the JSON copies of the
    parameters must agree with them, and their bounds (crypto.puzzle.MAX_MEMORY) keep a
    hostile hub from making this computer allocate without limit."""
    try:
        challenge = puzzle.parse_challenge(bytes.fromhex(str(answer["challenge"])))
        expires_at = int(answer["expires_at"])
        agreed = int(answer["difficulty"]) == challenge.params.difficulty
    except (KeyError, TypeError, ValueError, MalformedError):
        raise HubProtocolError(
            "the hub's case puzzle cannot be read (it asks for something this client does not "
            "do, or more memory than a phone has); tell the helpline"
        ) from None
    if not agreed:
        raise HubProtocolError("the hub's case puzzle contradicts itself; tell the helpline")
    nonce = puzzle.solve(challenge, public_key, progress=progress, cancelled=cancelled)
    return Solved(hub, puzzle.encode_solution(challenge, nonce), expires_at)


def load_cached(home: ClientHome, case_id: str, hub: str, now: int) -> Solved | None:
    """The saved solution for this case and hub if its challenge has not expired yet."""
    path = home.cases_dir / case_id / PUZZLE_FILE
    if not path.is_file():
        return None
    try:
        data = boundedjson.loads(read_limited(path), max_bytes=4096)
        solved = Solved(str(data["hub"]), str(data["solution"]), int(data["expires_at"]))
        puzzle.parse_solution(solved.header)
    except (StoreError, KeyError, TypeError, ValueError, MalformedError):
        return None  # damaged: solve again
    if solved.hub != hub or solved.expires_at <= now + EXPIRY_MARGIN:
        return None
    return solved


def save_cached(home: ClientHome, case_id: str, solved: Solved) -> None:
    """Keep the solution in the case folder (mode 0600, atomic)."""
    folder = home.cases_dir / case_id
    ensure_private_dir(folder)
    body = {"v": 1, "hub": solved.hub, "solution": solved.header, "expires_at": solved.expires_at}
    atomic_write(folder / PUZZLE_FILE, json.dumps(body).encode() + b"\n")
