"""The intake's preparing thread: verifies and prepares the lean path's submissions in
batches, off the event loop, and hands them to the writer (hub.intakewriter).

Why a queue of its own rather than a thread pool: handing one submission to a pool and back
costs the event loop 0.07-0.1 ms of CPU (a work item, two futures, a wake-up of the loop for
each), about a tenth of a submission's whole cost in this process. Here a request's coroutine
appends to a list and waits on one future; this thread takes everything waiting (at most
``PREPARE_BATCH``), reads their replay records in one statement (hub.intake.prepare_each),
passes the prepared ones to the writer (``HANDOFF_S``, ``EAGER_BYTES``), which resolves their
futures after the group commit (one wake-up per group), and answers the rest itself at once
(a refusal, a retry's stored answer). One thread: a second only adds GIL hand-offs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from hub.intake import Arrival, Prepared, Result
from hub.intakewriter import IntakeWriter, WriterClosedError
from hub.queuethread import QueueThread, item_failure

__all__ = ["EAGER_BYTES", "HANDOFF_S", "PREPARE_BATCH", "IntakePreparer"]

# Submissions taken together at most (one replay read for them). Measured against 32, in
# three alternating full runs: 202 p50 at half load 29-31 ms against 36-44 ms, p99 106-112
# against 108-136 ms, throughput within the noise.
PREPARE_BATCH = 8
# Prepared submissions go to the writer together (larger groups, fewer commits: handing each
# over on its own measured 8,277-9,091 against 8,622-10,651 hashes/s in two alternating
# runs), but none waits longer than this for the others of its batch...
HANDOFF_S = 0.002
# ... and one by one in a batch with a body this large (a 10-hash submission is about 1.3 KB;
# 1,000 hashes take milliseconds to verify and seal).
EAGER_BYTES = 64 << 10

_FAILED = "preparing this submission failed; retry"

PrepareEach = Callable[[Sequence[Arrival]], Iterator[tuple[int, Result]]]


@dataclass(slots=True)
class _Waiting:
    arrival: Arrival
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    prepared: Prepared | None = None
    handed: bool = False  # to the writer, which answers it


class IntakePreparer(QueueThread[_Waiting]):
    """Prepares submissions in batches and queues them with ``writer``; one per app.

    :meth:`close` prepares what is queued first (close the writer after this, so that it
    stores them); the thread is hub.queuethread's."""

    def __init__(self, prepare_each: PrepareEach, writer: IntakeWriter) -> None:
        super().__init__("ncii-intake-prepare", PREPARE_BATCH)
        self._prepare_each = prepare_each
        self._writer = writer

    async def submit(self, arrival: Arrival) -> tuple[Prepared | None, Any]:
        """``(None, (status, body))`` for an identical retry (its stored answer), else
        ``(prepared, outcome)`` once the writer stored it or refused it (hub.intake.answer
        maps the outcome); raises the refusal (HubError) or failure that preparing met,
        WriterClosedError once closing, or the error of a thread that could not start."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(arrival, loop, loop.create_future())
        if not self._put([waiting]):
            raise WriterClosedError
        result = await waiting.future
        return waiting.prepared, result

    def _work(self, batch: list[_Waiting]) -> None:
        try:
            self._prepare(batch)
        except BaseException as exc:  # a bug must neither leave requests waiting nor
            for waiting in batch:  # end this thread
                if not waiting.handed:  # (the writer answers those it holds)
                    _settle_soon(waiting, item_failure(exc, _FAILED))

    def _prepare(self, batch: list[_Waiting]) -> None:
        """Answer each refusal or retry at once; hand prepared submissions to the writer
        together, at the end of the batch or once ``HANDOFF_S`` passed since the first of
        them was ready, and one by one in a batch that holds a large body (milliseconds to
        prepare), so that a submission waits little for the others' work."""
        eager = any(len(w.arrival.raw) > EAGER_BYTES for w in batch)
        pending: list[tuple[_Waiting, Prepared]] = []
        since = 0.0
        for i, result in self._prepare_each([w.arrival for w in batch]):
            waiting = batch[i]
            if not isinstance(result, Prepared):
                _settle_soon(waiting, result)
                continue
            waiting.prepared = result  # before the writer may resolve its future
            if not pending:
                since = time.perf_counter()
            pending.append((waiting, result))
            if eager or time.perf_counter() - since >= HANDOFF_S:
                self._hand_over(pending)
                pending = []
        if pending:
            self._hand_over(pending)

    def _hand_over(self, pending: list[tuple[_Waiting, Prepared]]) -> None:
        for waiting, _prepared in pending:
            waiting.handed = True
        try:
            self._writer.enqueue([(prepared, w.loop, w.future) for w, prepared in pending])
        except BaseException as exc:  # e.g. no thread could be started for the writer
            for waiting, _prepared in pending:
                _settle_soon(waiting, item_failure(exc, _FAILED))


def _settle_soon(waiting: _Waiting, result: Result) -> None:
    try:
        waiting.loop.call_soon_threadsafe(_settle, waiting, result)
    except RuntimeError:  # that loop is closed: nobody waits for the answer
        pass


def _settle(waiting: _Waiting, result: Result) -> None:
    if waiting.future.done():  # its request may have been cancelled meanwhile
        return
    if isinstance(result, BaseException):
        waiting.future.set_exception(result)
    else:
        waiting.future.set_result(result)
