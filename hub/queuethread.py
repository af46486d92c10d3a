"""A thread that works through a queue in batches: the intake's preparing thread
(hub.intakeprep) and its writer (hub.intakewriter) are each one.

Why not a ThreadPoolExecutor: a pool hands over one item at a time, each with a future and a
wake-up of its own; these threads take everything queued (up to a bound) and work on it
together. The thread starts with the first item, is started again should it ever have
ended, and ends at :meth:`QueueThread.close` once the queue is empty.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Generic, TypeVar

__all__ = ["QueueThread", "item_failure"]

T = TypeVar("T")


class QueueThread(Generic[T]):
    """Subclasses implement :meth:`_work`, which must answer every item it is given (it runs
    on the thread; an exception escaping it would end the thread until the next item)."""

    def __init__(self, name: str, most: int) -> None:
        self._name = name
        self._most = most
        self._ready = threading.Condition()
        self._queue: list[T] = []
        self._thread: threading.Thread | None = None
        self._closing = False

    def _put(self, items: Iterable[T]) -> bool:
        """Queue ``items``; False once closing (nothing is queued then). Raises if the thread
        cannot be started (nothing is queued either), so the caller can answer at once."""
        with self._ready:
            if self._closing:
                return False
            if self._thread is None or not self._thread.is_alive():
                thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                thread.start()
                self._thread = thread
            self._queue.extend(items)
            self._ready.notify()
        return True

    def close(self) -> None:
        """Work through what is queued, then end the thread (blocking: call it from a
        thread); later items are refused (:meth:`_put` returns False)."""
        with self._ready:
            self._closing = True
            thread = self._thread
            self._ready.notify()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closing:
                    self._ready.wait()
                if not self._queue:
                    return
                batch = self._queue[: self._most]
                del self._queue[: self._most]
            self._work(batch)

    def _work(self, batch: list[T]) -> None:
        raise NotImplementedError


def item_failure(cause: BaseException, message: str) -> RuntimeError:
    """A failure of its own for each item that ``cause`` failed (one exception object raised
    in many requests would collect every one's traceback)."""
    failure = RuntimeError(message)
    failure.__cause__ = cause
    return failure
