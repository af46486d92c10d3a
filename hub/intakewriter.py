"""The intake's single writer: stores the lean path's submissions in groups, off the event loop.

Why one thread: a request that waits for its group's sync in a thread of its own costs that
thread's wake-ups and a share of the GIL hand-offs between forty threads; measured, that was
more CPU than the submission's own work (specs/hub-storage.md section 8). Here a request's
coroutine waits on a future instead, and this thread takes everything queued so far: the keys
of the whole group in one key-store transaction, then the group's rows in one database
transaction (SqlStorage.store_group), then one wake-up of the event loop for the whole group,
then the erasure of refused requests' keys (nothing of those was stored). A 202 still means
durable: a request's future is resolved only after its group committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hub.admission import Decision
from hub.intake import Prepared, refused_outright
from hub.queuethread import QueueThread, item_failure
from hub.storage import GROUP_MAX_REQUESTS, SqlStorage
from hub.vault import KeyVault

__all__ = ["IntakeWriter", "Outcome", "WriterClosedError"]

Outcome = Decision | BaseException | None

log = logging.getLogger("ncii.hub")
_FAILED = "storing this submission failed; retry"


class WriterClosedError(RuntimeError):
    """The hub is stopping and stores nothing more; the client should retry."""

    def __init__(self, message: str = "the hub is stopping; retry") -> None:
        super().__init__(message)


@dataclass(slots=True)
class _Waiting:
    prepared: Prepared
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


class IntakeWriter(QueueThread[_Waiting]):
    """Stores prepared submissions (hub.intake.prepare) in groups; one per app.

    :meth:`close` stores what is queued first (uvicorn lets in-flight requests finish before
    the lifespan ends); the thread is hub.queuethread's.
    """

    def __init__(self, vault: KeyVault, storage: SqlStorage) -> None:
        super().__init__("ncii-intake-writer", GROUP_MAX_REQUESTS)
        self._vault = vault
        self._storage = storage

    async def store(self, prepared: Prepared) -> Outcome:
        """Store ``prepared`` with whatever else is queued; returns its decision, or the
        refusal or failure it met (never raises it: hub.intake.answer maps it)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self.enqueue([(prepared, loop, future)])
        return await future

    def enqueue(
        self,
        items: Sequence[tuple[Prepared, asyncio.AbstractEventLoop, asyncio.Future[Any]]],
    ) -> None:
        """Queue prepared submissions from any thread (hub.intakeprep's); each future gets
        its submission's outcome, set on its own loop, as :meth:`store` returns it. Raises
        if the thread cannot be started (nothing is queued: the caller answers)."""
        waiting = [_Waiting(*item) for item in items]
        if not self._put(waiting):
            closed: list[tuple[_Waiting, Outcome]] = [(w, WriterClosedError()) for w in waiting]
            for loop, done in _by_loop(closed).items():
                _call_soon(loop, done)

    def _work(self, group: list[_Waiting]) -> None:
        erase: list[str] = []
        try:
            outcomes, erase = self._store(group)
        except BaseException as exc:  # a bug must neither leave requests waiting nor
            outcomes = [item_failure(exc, _FAILED) for _ in group]  # end this thread
        for loop, done in _by_loop(list(zip(group, outcomes, strict=True))).items():
            _call_soon(loop, done)
        if erase:  # after the answers: the group's 202s never wait for a refusal's erase
            self._erase(erase)

    def _store(self, group: Sequence[_Waiting]) -> tuple[list[Outcome], list[str]]:
        """Keys, then rows; one outcome each, and the entry ids of refused requests (nothing
        of them was stored), whose keys are to be erased."""
        outcomes: list[Outcome] = [None] * len(group)
        try:
            refusals = self._vault.put_entry_key_groups([w.prepared.entry_keys for w in group])
        except Exception as exc:  # the key store failed as a whole: nothing was stored
            return [item_failure(exc, _FAILED) for _ in group], []
        stored = []
        for i, (waiting, refusal) in enumerate(zip(group, refusals, strict=True)):
            if refusal is not None:
                outcomes[i] = refusal
            else:
                stored.append((i, waiting))
        requests = [waiting.prepared.request for _i, waiting in stored]
        try:
            self._storage.store_group(requests)
        except Exception as exc:
            # Only the type: a driver's message may quote the rows' values.
            log.error("the group commit failed (%s); its requests are answered 500", type(exc))
        erase: list[str] = []
        for (i, waiting), request in zip(stored, requests, strict=True):
            outcome = request.error if request.error is not None else request.decision
            if not request.decided:
                outcome = RuntimeError("the group commit was interrupted; retry")
            outcomes[i] = outcome
            if isinstance(outcome, BaseException) and refused_outright(waiting.prepared, outcome):
                erase.extend(eid for eid, _key in waiting.prepared.entry_keys)
        return outcomes, erase

    def _erase(self, entry_ids: list[str]) -> None:
        try:
            self._vault.erase(entry_ids)
        except Exception as exc:
            # Keys of rows that were never stored: the next start erases them (hub.erasure).
            log.warning("the keys of refused submissions were not erased yet: %s", exc)


def _by_loop(
    done: list[tuple[_Waiting, Outcome]],
) -> dict[asyncio.AbstractEventLoop, list[tuple[_Waiting, Outcome]]]:
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Waiting, Outcome]]] = {}
    for waiting, outcome in done:
        by_loop.setdefault(waiting.loop, []).append((waiting, outcome))
    return by_loop


def _call_soon(loop: asyncio.AbstractEventLoop, done: list[tuple[_Waiting, Outcome]]) -> None:
    """Resolve ``done`` on ``loop``: one wake-up of that loop for all of them."""
    try:
        loop.call_soon_threadsafe(_resolve, done)
    except RuntimeError:  # that loop is closed: nobody waits for the answer
        pass


def _resolve(done: list[tuple[_Waiting, Outcome]]) -> None:
    for waiting, outcome in done:
        if not waiting.future.done():  # its request may have been cancelled meanwhile
            waiting.future.set_result(outcome)
