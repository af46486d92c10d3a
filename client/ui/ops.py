"""What the page can ask of a case: create, recover, submit, status, withdraw.

:class:`CaseOps` is the seam between the local web server and the client library. The server
talks only to this protocol, so the page works the same whichever implementation is behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["CaseOps", "NewCaseView", "OpsError", "StatusView"]


class OpsError(Exception):
    """A failure to show the person as is: ``code`` is stable, the message is plain advice."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class NewCaseView:
    case_id: str
    recovery_code: str


@dataclass(frozen=True, slots=True)
class StatusView:
    """Counts only: the page never needs hash values."""

    case_id: str
    withdrawn: bool
    fingerprints: int  # additions ever accepted
    recorded: int  # additions the latest checkpoint includes
    waiting: int  # additions not yet in the log
    removed: int  # additions withdrawn
    partners: int | None = None  # partners that received every live addition, if the hub says
    held: int = 0  # additions held for review by the hub's operator (not in the log yet)
    rejected: int = 0  # additions not accepted after review (deleted by the hub)

    def as_json(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "withdrawn": self.withdrawn,
            "fingerprints": self.fingerprints,
            "recorded": self.recorded,
            "waiting": self.waiting,
            "removed": self.removed,
            "partners": self.partners,
            "held": self.held,
            "rejected": self.rejected,
        }


class CaseOps(Protocol):
    def create_case(self) -> NewCaseView: ...
    def recover_case(self, code: str) -> str: ...
    def submit(self, case_id: str, hashes: Sequence[dict[str, Any]]) -> int: ...
    def status(self, case_id: str) -> StatusView: ...
    def withdraw_all(self, case_id: str) -> StatusView: ...
