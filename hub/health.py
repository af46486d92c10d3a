"""``GET /readyz``: can this hub process do its work right now (specs/hub-api.md section 10)?

Why each check: the database holds every case and the log; the key store (keys.sqlite3) must
take writes, or no submission and no withdrawal can complete; the sequencer task, if this
process runs one, must be alive (and, while it holds the lock, finishing rounds), or accepted
entries never reach the log; the tiles folder must take a new file, or no checkpoint can be
published. Each problem is a short fixed sentence naming the check and the exception class:
never a path's secret part, a database URL (it may hold a password) or an error text from
outside.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from hub.metrics import SequencerView

__all__ = ["SharedReadiness", "readiness"]

PROBE_TIMEOUT = 2.0  # seconds a key-store probe may wait for a lock
REUSE_SECONDS = 1.0  # a finished check answers every /readyz for this long


def _database(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT size FROM log_state WHERE id = 1")).first()
    except SQLAlchemyError as exc:
        return f"the database cannot be read ({type(exc).__name__})"
    return None


def _key_store(path: Path) -> str | None:
    """Open the key store afresh (never creating it), read it and take its write lock."""
    try:
        uri = f"{path.resolve().as_uri()}?mode=rw"
        conn = sqlite3.connect(uri, uri=True, timeout=PROBE_TIMEOUT, isolation_level=None)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except (sqlite3.Error, OSError) as exc:
        return f"the key store cannot be read and written ({type(exc).__name__})"
    return None


def _tiles(directory: Path) -> str | None:
    """Create and remove a small file where tiles are written."""
    try:
        fd, name = tempfile.mkstemp(prefix=".readyz-", dir=directory)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        return f"the tiles folder is not writable ({type(exc).__name__})"
    return None


def _sequencer(view: SequencerView, stale_after: float, now: float) -> str | None:
    if not view.enabled:
        return None
    if not view.running():
        return "the sequencer task is not running"
    last = view.last_round()
    if view.holds_lock() and last is not None and now - last > stale_after:
        return f"the sequencer has not finished a round for {int(now - last)} s"
    return None


def readiness(
    engine: Engine,
    key_store: Path,
    tiles_dir: Path,
    sequencer: SequencerView,
    stale_after: float,
    clock: Callable[[], float] = time.time,
) -> dict[str, str]:
    """Each failing check's short reason, by check name (empty when the hub is ready)."""
    checks = {
        "database": _database(engine),
        "key_store": _key_store(key_store),
        "sequencer": _sequencer(sequencer, stale_after, clock()),
        "tiles": _tiles(tiles_dir),
    }
    return {name: problem for name, problem in checks.items() if problem is not None}


class SharedReadiness:
    """One readiness check at a time, its result shared by every caller (``GET /readyz``).

    Why: /readyz needs no token, and each check takes the key store's write lock (waiting up
    to :data:`PROBE_TIMEOUT` when it is busy), writes a file and reads the database. Run per
    request, a flood of /readyz would hold every worker thread (so no route answers) and
    contend for the key store with real withdrawals. Here callers that arrive while a check
    runs await that same check (no thread each), and a finished check answers for
    ``reuse`` seconds.
    """

    def __init__(
        self,
        check: Callable[[], dict[str, str]],
        reuse: float = REUSE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._reuse = reuse
        self._clock = clock
        self._running: asyncio.Future[dict[str, str]] | None = None
        self._last: tuple[float, dict[str, str]] | None = None

    async def problems(self) -> dict[str, str]:
        """The current problems by check name (empty when ready); see :func:`readiness`."""
        if self._last is not None and self._clock() - self._last[0] < self._reuse:
            return dict(self._last[1])
        if self._running is None:
            # Cleared by the callback when the thread ends, not by this caller: a caller that
            # goes away (cancelled) must not let the next one start a second thread.
            running = asyncio.ensure_future(asyncio.to_thread(self._check))
            running.add_done_callback(self._finished)
            self._running = running
        return dict(await asyncio.shield(self._running))

    def _finished(self, running: asyncio.Future[dict[str, str]]) -> None:
        self._running = None
        if not running.cancelled() and running.exception() is None:
            self._last = (self._clock(), running.result())
