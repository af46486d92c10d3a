"""hub.ratelimit: token buckets per key, a bounded table, and nothing the cyclic garbage
collector has to walk (a full table is 100,000 buckets, walked by every full collection
while every request waited)."""

from __future__ import annotations

import gc

from hub.ratelimit import RateLimiter


def test_burst_then_refill_at_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, max_keys=10, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == 0.5  # empty: one token in half a second
    assert limiter.take("b") == 0.0  # another key has its own bucket
    now[0] = 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == 0.5
    now[0] = 100.0
    assert [limiter.take("a") for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]  # never above burst


def test_the_table_keeps_the_most_recently_used_keys() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=3, clock=lambda: now[0])
    for key in ("a", "b", "c"):
        assert limiter.take(key) == 0.0
    assert limiter.take("a") == 1.0  # "a" is now the most recent
    assert limiter.take("d") == 0.0  # evicts "b", the least recently used
    assert limiter.take("a") == 1.0  # still remembered: still empty
    assert limiter.take("b") == 0.0  # forgotten: a full bucket again
    assert len(limiter._buckets) == 3


def test_a_full_table_gives_the_collector_nothing_to_walk() -> None:
    limiter = RateLimiter(rate=1.0, burst=5, max_keys=10_000)
    for i in range(20_000):
        limiter.take(f"198.51.100.{i}")
    gc.collect()
    assert len(limiter._buckets) == 10_000
    assert not any(gc.is_tracked(b) for b in limiter._buckets.values())
