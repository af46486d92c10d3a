"""Token-bucket rate limits per client address and per case (in memory, per process).

Why in memory: limits protect this process from floods; they need no durability. The table is
bounded (least recently used keys are dropped), and keys are only what limiting needs: the
client address as the server saw it, or a case id. Nothing here is logged.

Each bucket is a ``(tokens, stamp)`` tuple of floats, replaced on every take: such tuples are
not tracked by Python's cyclic garbage collector, while a table of 100,000 bucket objects
was walked by every full collection, a pause for every request in flight.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """``rate`` tokens per second, at most ``burst`` saved; one token per request."""

    def __init__(
        self,
        rate: float,
        burst: int,
        max_keys: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, stamp
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one token for ``key``: 0.0 if allowed, else seconds until one is available."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                tokens = self.burst
                if len(self._buckets) >= self.max_keys:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
                tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            return wait
