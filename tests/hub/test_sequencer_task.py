"""The sequencer's loop (hub.sequencer.SequencerTask): the feed sealer and the rest of the
housekeeping run after every round that integrated entries, but an idle hub's rounds do not
run them each time (only every ``idle_sweep`` seconds): an idle test hub with 50 ms rounds
spent about half of its 9-11% of a core on the sealer's reads.

Fakes stand in for the sequencer and its lock: what is asserted is when the loop calls back.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any

from hub.sequencer import SequencerTask


class _Log:
    """Integrates ``pending`` entries at the next round; counts rounds."""

    def __init__(self) -> None:
        self.pending = 0
        self.rounds = 0
        self.lock = threading.Lock()

    def recover(self) -> int:
        return 0

    def step(self, max_entries: int) -> int:
        with self.lock:
            self.rounds += 1
            done, self.pending = self.pending, 0
            return done


class _Held:
    def acquire(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        pass


def _run(idle_sweep: float, body: Any) -> tuple[_Log, list[float]]:
    """Run a task with 10 ms rounds around ``body(log, sweeps)``; the times (monotonic) at
    which the housekeeping ran."""
    log, sweeps = _Log(), []

    async def main() -> None:
        task = SequencerTask(
            log,  # type: ignore[arg-type]
            _Held(),
            interval=0.01,
            max_entries=100,
            lock_retry=0.01,
            purge=lambda now: 0,
            after_step=lambda: sweeps.append(time.monotonic()),
            idle_sweep=idle_sweep,
        )
        task.start()
        try:
            await body(log, sweeps)
        finally:
            await task.stop()

    asyncio.run(main())
    return log, sweeps


def test_idle_rounds_do_not_run_the_sealer_every_time() -> None:
    async def idle(log: _Log, sweeps: list[float]) -> None:
        await asyncio.sleep(0.6)

    log, sweeps = _run(5.0, idle)
    assert log.rounds >= 20  # rounds still run every interval...
    assert len(sweeps) == 1, sweeps  # ... but only the first (after taking the lock) sweeps


def test_idle_rounds_still_sweep_every_idle_sweep_seconds() -> None:
    async def idle(log: _Log, sweeps: list[float]) -> None:
        await asyncio.sleep(1.0)

    _log, sweeps = _run(0.2, idle)
    assert 3 <= len(sweeps) <= 7, sweeps
    gaps = [b - a for a, b in itertools.pairwise(sweeps)]
    assert min(gaps) >= 0.19, gaps


def test_a_round_that_integrated_entries_runs_the_sealer_at_once() -> None:
    """However long the idle sweep, new entries are sealed right after their round (the
    202-to-partner latency depends on it)."""
    waited: list[float] = []

    async def integrate(log: _Log, sweeps: list[float]) -> None:
        await asyncio.sleep(0.2)  # past the first sweep: idle from here on
        for _ in range(5):
            before = len(sweeps)
            began = time.monotonic()
            with log.lock:
                log.pending = 3
            while len(sweeps) == before:
                assert time.monotonic() - began < 2.0, "no sweep after entries were integrated"
                await asyncio.sleep(0.005)
            waited.append(time.monotonic() - began)

    _log, sweeps = _run(60.0, integrate)
    assert len(sweeps) == 6  # the first round's, then one per round with entries
    assert max(waited) < 0.5, waited
