"""The witness's connection limits: a deadline for request heads, a connection cap, quiet logs.

Why: uvicorn keeps a connection open for as long as its client takes to send the request line
and headers, and accepts connections until file descriptors run out; thousands of clients that
never finish their headers (slowloris) would lock honest logs out of the witness. Here:

* a connection whose request head is not complete ``header_timeout`` seconds after it opened
  (or after its previous answer) is closed;
* at most ``max_connections`` are open; a new one past the cap first evicts the oldest
  connection still waiting for its head (the likeliest idle attacker), and is refused only if
  every open connection is busy with a request;
* repeated identical log lines (bad HTTP, evictions) are logged at a bounded rate, with a count
  of what was left out, so a flood cannot fill the disk or bury a real message;
* the soft RLIMIT_NOFILE is raised to the hard limit, and the cap kept below it.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import h11

if TYPE_CHECKING:
    from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "RateLimitFilter",
    "guarded_protocol",
    "raise_fd_limit",
    "serve",
]

DEFAULT_HEADER_TIMEOUT: Final = 10.0
"""Seconds a client has to send its whole request line and headers."""
DEFAULT_BODY_TIMEOUT: Final = 30.0
"""Seconds a client has to send its whole body once its head is in (a trickle is cut off)."""
DEFAULT_MAX_CONNECTIONS: Final = 1000
"""Open connections at most (a witness serves a handful of logs and readers)."""
FD_RESERVE: Final = 64
"""File descriptors kept free of connections (the database, logs, the listening socket)."""

_log = logging.getLogger("uvicorn.error")


class RateLimitFilter(logging.Filter):
    """Lets through at most ``burst`` records with the same message per ``window`` seconds.

    The first record after a quiet-enough window carries a count of those dropped before it.
    """

    def __init__(self, burst: int = 5, window: float = 60.0) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, object], list[float]] = {}  # [window start, count, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = time.monotonic()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or now - entry[0] >= self.window:
                dropped = int(entry[2]) if entry is not None else 0
                if len(self._seen) > 1000:  # many distinct messages: forget the old windows
                    self._seen.clear()
                self._seen[key] = [now, 1.0, 0.0]
                if dropped:
                    record.msg = f"{record.msg} [{dropped} identical messages were not logged]"
                return True
            entry[1] += 1
            if entry[1] <= self.burst:
                return True
            entry[2] += 1
            return False


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard limit; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft)


def guarded_protocol(header_timeout: float, max_connections: int) -> type[H11Protocol]:
    """An H11Protocol class with a request-head deadline and a connection cap (one server)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol  # the server's own import

    if header_timeout <= 0 or max_connections < 1:
        raise ValueError("header_timeout must be positive and max_connections at least 1")
    # Connections waiting for a request head, oldest first (dicts keep insertion order).
    waiting: dict[GuardedH11Protocol, None] = {}

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            full = len(self.connections) >= max_connections
            if full and waiting:
                oldest = next(iter(waiting))
                _log.warning(
                    "connection cap (%d) reached: closing the oldest connection still "
                    "sending its request head",
                    max_connections,
                )
                oldest._close_idle()
                full = False
            super().connection_made(transport)  # type: ignore[arg-type]
            if full:
                _log.warning(
                    "connection cap (%d) reached and every connection is busy: refusing one",
                    max_connections,
                )
                transport.close()
                return
            self._await_head()

        def _await_head(self) -> None:
            self._stop_waiting()
            self._head_timer = self.loop.call_later(header_timeout, self._close_idle)
            waiting[self] = None

        def _stop_waiting(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            waiting.pop(self, None)

        def _close_idle(self) -> None:
            self._stop_waiting()
            if not self.transport.is_closing():
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._head_timer is not None and self.conn.their_state is not h11.IDLE:
                self._stop_waiting()  # the head is complete (or broken and answered)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._await_head()  # kept alive: the next head has the same deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_waiting()
            super().connection_lost(exc)

    return GuardedH11Protocol


def serve(
    app: Any,
    host: str,
    port: int,
    *,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    log_format: str = "text",
) -> int:
    """Run ``app`` with uvicorn behind the limits above; returns the connection cap used.

    With ``log_format="json"`` uvicorn keeps its hands off logging (``log_config=None``) and its
    records reach the root handler that :func:`auditor.logformat.configure_logging` installed.
    """
    import uvicorn

    extra: dict[str, Any] = {"log_config": None} if log_format == "json" else {}

    cap = max(1, min(max_connections, raise_fd_limit() - FD_RESERVE))
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(header_timeout, cap),
        log_level="warning",
        access_log=False,
        timeout_keep_alive=int(min(5.0, header_timeout)) or 1,
        backlog=min(2048, cap),
        **extra,
    )
    quiet = RateLimitFilter()
    for name in ("uvicorn.error", "uvicorn", "asyncio", "auditor"):
        logging.getLogger(name).addFilter(quiet)
    run_until_stopped(config)
    return cap


def run_until_stopped(config: Any) -> None:
    """Serve until SIGINT (then KeyboardInterrupt, for exit status 130) or SIGTERM (return).

    uvicorn stops gracefully on either, but re-raises the signal once it has shut down, and
    under asyncio's runner a re-raised SIGINT surfaces as two chained tracebacks (issue 18
    finding 4). This server keeps the first signal instead; a second one changes nothing."""
    import contextlib
    import signal
    from collections.abc import Iterator
    from types import FrameType

    import uvicorn

    class StopOnSignal(uvicorn.Server):
        stopped_by: int | None = None

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return

            def stop(signum: int, frame: FrameType | None) -> None:
                if self.stopped_by is None:
                    self.stopped_by = signum
                self.should_exit = True

            previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)

    server = StopOnSignal(config)
    server.run()
    if server.stopped_by == signal.SIGINT:
        raise KeyboardInterrupt
