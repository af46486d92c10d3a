"""The wake-up of a group commit's waiting requests (hub.storage, hub.vault).

Both stores commit the requests that arrive while a group is being written as the next group,
led by the oldest waiting request; every other request waits once and is woken once.
"""

from __future__ import annotations

import threading

__all__ = ["parked_lock"]


def parked_lock() -> threading.Lock:
    """A lock held from birth: its owner waits by acquiring it, another thread wakes it by
    releasing it once. Why not an Event: a request makes one, and an Event's Condition costs
    several times the CPU of a bare lock."""
    lock = threading.Lock()
    lock.acquire()
    return lock
