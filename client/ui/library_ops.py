""":class:`~client.ui.ops.CaseOps` on the client library: the page's cases are the CLI's cases.

Cases live in the same data folder as ``ncii-client case``'s (so ``ncii-client status`` and
``receipts verify`` work on what the page sent), the hub's log key is pinned at first contact,
and pending receipts are recorded on submit and completed with verified inclusion proofs on
each status check. Library errors become :class:`OpsError` with wording for the page (the
library's own messages point at terminal commands).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from client.api import (
    CaseStatus,
    ClientError,
    ClientHome,
    HubKeyChangedError,
    HubRefusedError,
    HubSession,
    HubUnreachableError,
    SubmissionPlan,
)
from client.ui.ops import NewCaseView, OpsError, StatusView
from crypto.errors import CryptoError, RecoveryCodeError

__all__ = ["LibraryOps", "page_message"]

T = TypeVar("T")

_REFUSED = {
    "low_quality": "The service refused a picture as too plain to recognise. Remove it and retry.",
    "denied_hash": (
        "The service refused a file because it matches a common, harmless picture (for "
        "example an icon or a stock photo). Start again without it."
    ),
    "duplicate_hash": "The same file was chosen twice. Start again without the copy.",
    "too_many_hashes": "Too many files at once. Start again with fewer files.",
    "too_many_frames": "A video is too long for the service. Try a shorter clip.",
    "case_limit": "This case is full. Use \u201cProtect more files\u201d to start a new case.",
    "case_withdrawn": (
        "This case was withdrawn and takes nothing more. "
        "Use \u201cProtect more files\u201d to start a new case."
    ),
    "unknown_case": "The service holds nothing for this case yet: nothing was sent with it.",
    "stale_timestamp": (
        "This computer's clock seems wrong. Set the correct date and time, then try again."
    ),
    "body_too_large": "Too much at once. Start again with fewer files.",
}
_UNREACHABLE = (
    "Could not reach the service. Nothing was lost: check the internet connection, "
    "then try again. If it keeps failing, ask your helpline whether the service is running."
)
_KEY_CHANGED = (
    "The service presents a different identity than the first time this computer contacted "
    "it. This can mean someone is impersonating it. Nothing was sent. Ask your helpline."
)
_NO_HUB = (
    "No service address was given, so nothing can be sent or checked. Ask your helpline "
    "for the address and start ncii-client ui again with --hub."
)


def page_message(exc: Exception) -> OpsError:
    """The page's wording for a library or recovery-code failure."""
    if isinstance(exc, RecoveryCodeError):
        if exc.group is None:
            text = "This recovery code is not right. Check each character and try again."
        else:
            text = (
                f"This recovery code has a typing mistake in group {exc.group} (the groups of "
                "four characters, counted from the left). Check that group and try again."
            )
        return OpsError("bad_code", text)
    if isinstance(exc, CryptoError):
        return OpsError("bad_code", "This is not a recovery code. Check it and try again.")
    if isinstance(exc, HubUnreachableError):
        return OpsError("unreachable", _UNREACHABLE)
    if isinstance(exc, HubKeyChangedError):
        return OpsError("hub_key_changed", _KEY_CHANGED)
    if isinstance(exc, HubRefusedError):
        return OpsError(exc.code, _REFUSED.get(exc.code, "The service refused the request."))
    return OpsError("client_error", str(exc))


class LibraryOps:
    """Each call opens its own :class:`HubSession` (the server is threaded; sessions are not)."""

    def __init__(self, hub_url: str, home: Path | None, **session_options: Any) -> None:
        """``session_options`` go to every :class:`HubSession` (tests: transport, sleep)."""
        self._hub_url = hub_url
        self._home_path = home
        self._session_options = session_options

    def _call(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except (ClientError, CryptoError) as exc:
            raise page_message(exc) from None

    def _home(self) -> ClientHome:
        return self._call(lambda: ClientHome.open(self._home_path))

    @contextmanager
    def _session(self) -> Iterator[HubSession]:
        if not self._hub_url:
            raise OpsError("no_hub", _NO_HUB)
        home = self._home()
        try:
            session = HubSession(self._hub_url, home, **self._session_options)
        except (ClientError, ValueError) as exc:
            raise OpsError("bad_hub", f"The service address is not usable: {exc}") from None
        with session:
            self._call(session.connect)
            yield session

    def create_case(self) -> NewCaseView:
        new = self._call(self._home().create_case)
        return NewCaseView(new.case_id, new.recovery_code)

    def recover_case(self, code: str) -> str:
        home = self._home()
        return self._call(lambda: home.recover_case(code))

    def submit(self, case_id: str, hashes: Sequence[dict[str, Any]]) -> int:
        plan = SubmissionPlan(tuple(hashes), ())
        with self._session() as hub:
            result = self._call(lambda: hub.submit(case_id, plan))
        return len(result.entries) + result.already_sent

    def status(self, case_id: str) -> StatusView:
        with self._session() as hub:
            status = self._call(lambda: hub.status(case_id))
            if not status.withdrawn:
                # Receipts: best effort, the status is what the person asked for.
                try:
                    hub.fetch_receipts(case_id, status=status)
                except (ClientError, CryptoError):
                    pass
        return _view(status)

    def withdraw_all(self, case_id: str) -> StatusView:
        with self._session() as hub:
            self._call(lambda: hub.withdraw(case_id, None))
            return _view(self._call(lambda: hub.status(case_id)))


def _view(status: CaseStatus) -> StatusView:
    additions = status.additions
    removed = sum(1 for e in additions if e.withdrawn)
    live = [e for e in additions if not e.withdrawn]
    recorded = sum(1 for e in live if e.state == "integrated")
    held = sum(1 for e in live if e.state == "held")
    rejected = sum(1 for e in live if e.state == "rejected")
    partners = [e.partners for e in live if e.partners is not None]
    return StatusView(
        case_id=status.case_id,
        withdrawn=status.withdrawn,
        fingerprints=len(additions),
        recorded=recorded,
        waiting=len(live) - recorded - held - rejected,
        removed=removed,
        partners=min(partners) if partners and len(partners) == len(live) else None,
        held=held,
        rejected=rejected,
    )
