"""The case puzzle at the hub: challenges, difficulty that follows intake load, checking.

Why: anyone may create a case without an identity, and each case may add thousands of hashes
to every partner's list; a fresh case per request must cost the sender work (issue 13). Format
and rules: specs/case-puzzle.md; the pure functions are crypto.puzzle.

Stateless: a challenge is an HMAC (key derived from master.key, so every hub process sharing
the data directory's keys agrees) of its epoch and parameters; nothing is stored per challenge.
The difficulty follows the number of cases created in the last ``puzzle_rate_window`` seconds,
read from the database so that several hub processes agree; each process re-reads it at most
once a second.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from starlette.responses import JSONResponse

from crypto import puzzle
from crypto.case import case_id as case_id_of
from crypto.errors import MalformedError, PuzzleExpiredError, PuzzleInvalidError
from hub.errors import HubError
from hub.settings import Settings
from hub.storage import Storage

if TYPE_CHECKING:
    from hub.context import HubContext

__all__ = ["CasePuzzle", "difficulty_for", "puzzle_router", "require_case_puzzle"]

PUZZLE_PATH = "/v1/case-puzzle"
HEADER = puzzle.HEADER_NAME
_REFRESH_SECONDS = 1.0


def difficulty_for(new_cases: int, normal: int, base: int, maximum: int) -> int:
    """``base`` while at most ``normal`` cases were created in the window, then one more bit
    per doubling beyond it (so the total work of a flood grows faster than the flood), capped
    at ``maximum``."""
    extra = 0
    while new_cases > normal << extra and base + extra < maximum:
        extra += 1
    return min(base + extra, maximum)


class CasePuzzle:
    """Issues and checks this hub's case puzzles; one per app (hub.app.create_app)."""

    def __init__(self, settings: Settings, master_key: bytes, storage: Storage) -> None:
        self.settings = settings
        self._key = puzzle.challenge_key(master_key)
        self._storage = storage
        self._lock = threading.Lock()
        self._cached: tuple[float, int] | None = None  # (read at, difficulty)
        self._log2_n = settings.puzzle_scrypt_n.bit_length() - 1

    @property
    def required(self) -> bool:
        return self.settings.puzzle

    def epoch(self, now: int) -> int:
        return now // self.settings.puzzle_epoch_seconds

    def difficulty(self, now: float) -> int:
        """The difficulty at ``now`` (re-read from the database at most once a second)."""
        with self._lock:
            if self._cached is not None and 0 <= now - self._cached[0] < _REFRESH_SECONDS:
                return self._cached[1]
        s = self.settings
        recent = self._storage.count_new_cases(int(now) - s.puzzle_rate_window)
        value = difficulty_for(
            recent, s.puzzle_normal_cases, s.puzzle_difficulty, s.puzzle_max_difficulty
        )
        with self._lock:
            self._cached = (now, value)
        return value

    def challenge(self, now: float) -> dict[str, Any]:
        """The GET /v1/case-puzzle answer at ``now`` (specs/case-puzzle.md section 2)."""
        s = self.settings
        epoch = self.epoch(int(now))
        params = puzzle.PuzzleParams(
            self.difficulty(now), self._log2_n, s.puzzle_scrypt_r, s.puzzle_scrypt_p
        )
        issued = puzzle.issue_challenge(self._key, epoch, params)
        return {
            "v": 1,
            "required": s.puzzle,
            "challenge": issued.encode().hex(),
            "difficulty": params.difficulty,
            "scrypt": {"n": params.n, "r": params.r, "p": params.p},
            "expires_at": (epoch + 2) * s.puzzle_epoch_seconds,
            "header": HEADER,
        }

    def check(self, header_value: str | None, public_key: bytes, now: int) -> None:
        """Raise the API error for a missing, malformed, forged, expired or wrong solution."""
        if header_value is None:
            raise HubError(
                428,
                "puzzle_required",
                "this submission would create a new case, which needs a solved case puzzle: "
                f"fetch one from GET {PUZZLE_PATH}, solve it for this case key and send the "
                f"solution in the {HEADER} header (the client programs do this themselves)",
            )
        try:
            puzzle.verify(self._key, header_value, public_key, self.epoch(now))
        except PuzzleExpiredError:
            raise HubError(
                403,
                "puzzle_expired",
                f"the case puzzle challenge has expired; fetch a fresh one from GET "
                f"{PUZZLE_PATH}, solve it again and resend the same submission",
            ) from None
        except (PuzzleInvalidError, MalformedError):
            raise HubError(
                403,
                "puzzle_invalid",
                f"the {HEADER} header does not hold a solution of a challenge from this hub "
                "for this case key (specs/case-puzzle.md)",
            ) from None


def require_case_puzzle(ctx: HubContext, public_key: bytes, headers: Mapping[str, str]) -> None:
    """Refuse a submission that would create a new case without a valid puzzle solution.

    A submission to an existing case (even a withdrawn one: storage refuses that later) needs
    none. Called by hub.intake.submit after the replay check and before anything is stored."""
    service = ctx.puzzle
    if service is None or not service.required:
        return
    if ctx.storage.get_case(case_id_of(public_key)) is not None:
        return
    service.check(headers.get(HEADER), public_key, ctx.now())


def puzzle_router(ctx: HubContext, service: CasePuzzle) -> APIRouter:
    """GET /v1/case-puzzle: the current challenge, difficulty and scrypt parameters."""
    router = APIRouter(tags=["cases"])

    @router.get(
        PUZZLE_PATH,
        summary="The case puzzle to solve before creating a case (specs/case-puzzle.md)",
    )
    def case_puzzle() -> JSONResponse:
        return JSONResponse(service.challenge(ctx.clock()), headers={"Cache-Control": "no-store"})

    return router
