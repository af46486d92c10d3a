"""Long-poll support for ``GET /v1/feed/batches?wait=S`` (specs/partner-api.md section 4.2).

Why a shared watcher: every waiting partner needs to learn the moment the feed changes, and
the change may come from another hub process (only the sequencer's process seals). One task
per process reads a small stamp of the feed table (highest end, batch count, version sum) every
``poll`` seconds while anyone waits, and wakes every waiter when it changes; the sealer in the
same process can also wake them at once (:meth:`FeedWatch.poke`). Waiters are bounded per
process: beyond ``max_waiters`` a request is answered at once with 503 ``busy``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import Engine, func, select
from starlette.concurrency import run_in_threadpool

from hub.db.engine import read_connection
from hub.db.models import FeedBatchRow, table_of

__all__ = ["MAX_WAIT", "FeedWatch", "feed_stamp"]

log = logging.getLogger("ncii.hub.feedwait")

MAX_WAIT = 60
"""Longest ``wait`` a partner may ask for, in seconds."""

BATCHES = table_of(FeedBatchRow)

Stamp = tuple[int, int, int]


def feed_stamp(engine: Engine) -> Stamp:
    """(highest end, batch count, version sum): changes whenever a batch is sealed, re-sealed
    or compacted."""
    with read_connection(engine) as conn:
        row = conn.execute(
            select(
                func.coalesce(func.max(BATCHES.c.end), 0),
                func.count(),
                func.coalesce(func.sum(BATCHES.c.version), 0),
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


class FeedWatch:
    """Wakes long-polling partners when the feed changes (one instance per hub process)."""

    def __init__(
        self,
        stamp: Callable[[], Stamp],
        *,
        poll: float = 0.1,
        max_waiters: int = 512,
    ) -> None:
        self._stamp = stamp
        self.poll = poll
        self.max_waiters = max_waiters
        self.waiters = 0
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last: Stamp | None = None

    def try_enter(self) -> bool:
        """Count one more waiter, or False if the bound is reached."""
        if self.waiters >= self.max_waiters:
            return False
        self.waiters += 1
        return True

    def leave(self) -> None:
        self.waiters -= 1

    def poke(self) -> None:
        """Wake every waiter now (thread-safe; the sealer calls it after sealing)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake)

    async def changed(self, timeout: float) -> None:
        """Return when the feed may have changed, or after ``timeout`` seconds."""
        if self._changed is None:
            self._changed = asyncio.Event()
            self._loop = asyncio.get_running_loop()
        event = self._changed
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ncii-feed-watch")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=timeout)

    async def _run(self) -> None:
        """Poll the stamp while anyone waits; each change wakes every current waiter.

        The last stamp is kept between runs, so a change made while nobody waited (or
        between a waiter's listing and this task's first read) wakes at once; a spurious
        wake only costs the waiter one more listing.
        """
        while self.waiters > 0:
            try:
                stamp = await run_in_threadpool(self._stamp)
            except Exception:
                log.warning("feed watch could not read the feed state; retrying")
                stamp = None
            if stamp is not None and stamp != self._last:
                self._last = stamp
                self._wake()
            await asyncio.sleep(self.poll)

    def _wake(self) -> None:
        if self._changed is not None:
            # Waiters already woken hold the old event; new ones wait on a fresh one.
            self._changed.set()
            self._changed = asyncio.Event()
