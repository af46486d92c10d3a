"""Serving the hub: uvicorn's HTTP/1.1 protocol with a connection cap and a header deadline,
and log lines that cannot flood.

Why this exists: uvicorn accepts every connection and waits for its request head forever, so
idle connections (half a request line, then nothing) exhaust the process's file descriptors;
then asyncio fails every ``accept()`` and logs it each time. uvicorn's ``limit_concurrency``
answers 503 only once a request head has arrived (and logs each), and its keep-alive timeout
starts only after a first response, so neither helps. :func:`guarded_protocol` subclasses
uvicorn's h11 protocol (pure Python, always installed; chosen explicitly so an installed
``httptools`` does not swap the class out) to:

- keep at most ``max_connections`` open: a new connection beyond it closes the *oldest
  connection still waiting for its request head* (an idle one), so an attacker's idle
  connections cannot lock out a client that sends its request at once; only when every open
  connection is busy with a request is the new one refused (``503``, then closed);
- close a connection whose request head is not complete ``header_timeout`` seconds after the
  connection opened (or, on a kept-alive connection, after its previous response);
- count both, logged as one summary line at most every ``_SUMMARY_SECONDS`` (10 s).

:class:`RepeatFilter` keeps any one message (logger, level, format) to a few lines per minute,
whatever emits it (asyncio, uvicorn, the hub), and says how many it held back.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import resource
import signal
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "LISTEN_BACKLOG",
    "ConnectionGuard",
    "RepeatFilter",
    "StopOnSignal",
    "connection_cap",
    "freeze_startup_heap",
    "guarded_protocol",
    "install_repeat_filter",
    "raise_open_file_limit",
    "run_lifespan_until_stopped",
    "run_until_stopped",
]

log = logging.getLogger("ncii.hub.serving")

LISTEN_BACKLOG = 1024  # accepted per event-loop turn at most, so also the fd overshoot bound
FD_RESERVE = 256  # database connections, tiles, feed files, witness requests, logs
_SUMMARY_SECONDS = 10.0
_BUSY_BODY = b'{"error":{"code":"server_busy","message":"too many connections; retry shortly"}}'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


def raise_open_file_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else target
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def connection_cap(wanted: int, open_files: int) -> int:
    """``wanted``, lowered so that the cap, one accept burst and the reserve fit the limit."""
    room = open_files - LISTEN_BACKLOG - FD_RESERVE
    return max(16, min(wanted, room))


class ConnectionGuard:
    """Connection bookkeeping shared by every connection of one server (one event loop)."""

    def __init__(
        self,
        max_connections: int,
        header_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.clock = clock
        self.open = 0
        # connections waiting for a request head, oldest first (the eviction order)
        self.idle: OrderedDict[GuardedProtocol, None] = OrderedDict()
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0
        self._last_summary = clock() - _SUMMARY_SECONDS
        self._flush_pending = False

    def admit(self) -> bool:
        """Room for one more connection: at once, or by closing the oldest idle one."""
        if self.open >= self.max_connections:
            if not self.idle:
                self.refused += 1
                self.summarise()
                return False
            victim, _ = self.idle.popitem(last=False)
            victim.close_idle()
            self.evicted += 1
            self.summarise()
        return True

    def summarise(self) -> None:
        """Log the counts now if the last summary is old enough, else once it is."""
        wait = self._last_summary + _SUMMARY_SECONDS - self.clock()
        if wait > 0:
            if not self._flush_pending:
                self._flush_pending = True
                asyncio.get_running_loop().call_later(wait, self._flush)
            return
        self._flush()

    def _flush(self) -> None:
        self._flush_pending = False
        self._last_summary = self.clock()
        if self.evicted or self.refused or self.timed_out:
            log.warning(
                "connections: %d open (cap %d); since the last summary %d idle closed to make "
                "room, %d refused (all busy), %d closed for a late request head",
                self.open,
                self.max_connections,
                self.evicted,
                self.refused,
                self.timed_out,
            )
            self.evicted = self.refused = self.timed_out = 0


class GuardedProtocol(H11Protocol):
    """uvicorn's h11 protocol under a :class:`ConnectionGuard` (set by guarded_protocol)."""

    guard: ConnectionGuard

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.guard.admit():
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(_BUSY)
            transport.close()
            return
        self._admitted = True
        self.guard.open += 1
        super().connection_made(transport)  # type: ignore[arg-type]
        self._track()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        self.guard.open -= 1
        self.guard.idle.pop(self, None)
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._track()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._track()

    def close_idle(self) -> None:
        """Close this connection (it is waiting for a request head)."""
        self._cancel_head_timer()
        if not self.transport.is_closing():
            self.transport.close()

    def _track(self) -> None:
        """Idle (waiting for a request head) or busy; the head deadline runs while idle."""
        waiting = (
            self._admitted
            and not self.transport.is_closing()
            and self.conn.their_state is h11.IDLE
            and self.conn.our_state is h11.IDLE
        )
        if waiting:
            if self._head_timer is None:
                self.guard.idle[self] = None
                self._head_timer = self.loop.call_later(
                    self.guard.header_timeout, self._head_deadline
                )
        else:
            self.guard.idle.pop(self, None)
            self._cancel_head_timer()

    def _head_deadline(self) -> None:
        self._head_timer = None
        self.guard.idle.pop(self, None)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.guard.timed_out += 1
            self.guard.summarise()
            self.transport.close()

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` bound to ``guard``."""
    return type("GuardedH11Protocol", (GuardedProtocol,), {"guard": guard})


class RepeatFilter(logging.Filter):
    """Let through at most ``burst`` records of one (logger, level, format) per ``period``
    seconds; the first one after a quiet spell says how many were held back."""

    def __init__(
        self,
        burst: int = 5,
        period: float = 60.0,
        max_keys: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst = burst
        self.period = period
        self.max_keys = max_keys
        self.clock = clock
        self._seen: OrderedDict[tuple[str, int, str], list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg)[:200])
        now = self.clock()
        with self._lock:
            entry = self._seen.get(key)  # [window start, passed, held back]
            if entry is None or now - entry[0] >= self.period:
                held = int(entry[2]) if entry is not None else 0
                self._seen[key] = [now, 1, 0]
                self._seen.move_to_end(key)
                while len(self._seen) > self.max_keys:
                    self._seen.popitem(last=False)
                if held:  # no "%" added: the record's own formatting stays as it was
                    record.msg = f"{record.msg} [{held} more like this were not logged]"
                return True
            if entry[1] < self.burst:
                entry[1] += 1
                return True
            entry[2] += 1
            return False


def install_repeat_filter(names: tuple[str, ...] = ("", "uvicorn", "uvicorn.error")) -> None:
    """Put one :class:`RepeatFilter` on every handler of these loggers (root included), so
    records propagated from any logger (asyncio's among them) are limited too."""
    shared = RepeatFilter()
    for name in names:
        for handler in logging.getLogger(name or None).handlers:
            if not any(isinstance(f, RepeatFilter) for f in handler.filters):
                handler.addFilter(shared)


class StopOnSignal(uvicorn.Server):
    """uvicorn's server, stopping gracefully on SIGINT or SIGTERM without re-raising it.

    Why: uvicorn re-raises the signal once it has shut down, and under asyncio's runner a
    re-raised SIGINT surfaces as two chained tracebacks (issue 18 finding 4). Here the first
    signal is kept in ``stopped_by`` for the caller to turn into an exit status; a second one
    changes nothing (the graceful stop is already bounded)."""

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


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound with SO_REUSEPORT: several hub processes on one host share the port
    and the kernel spreads connections over them (``serve --reuse-port``), so ingest uses
    several cores; they share the data directory and database, and the sequencer lock lets
    one of them sequence."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def freeze_startup_heap() -> int:
    """Collect once, then move every object alive now (modules, the app, its tables and
    settings: over 100,000) out of the cyclic collector's sight; returns how many.

    Why: each full collection walked all of them while holding the GIL, about 75 ms of CPU
    (up to 230 ms of wall time on a busy machine) that every request in flight waited out
    (the 202 p99 at half load, bench/bench_ingest.py); after the freeze one walks the 10,000-
    20,000 objects made since, 4-6 ms. Objects made later are collected as before."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def run_until_stopped(config: uvicorn.Config, sockets: list[socket.socket] | None = None) -> None:
    """Serve until SIGINT (then KeyboardInterrupt, for exit status 130) or SIGTERM (return)."""
    server = StopOnSignal(config)
    server.run(sockets=sockets)
    if server.stopped_by == signal.SIGINT:
        raise KeyboardInterrupt


def run_lifespan_until_stopped(app: Any) -> int | None:
    """Run ``app``'s lifespan (its startup, then its shutdown) with no HTTP server, until
    SIGINT or SIGTERM; return the signal that stopped it (``ncii-hub sequence``). The
    shutdown is the same graceful one ``serve`` runs: the current round finishes."""
    stopped: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def on_signal(signum: int) -> None:
            if not stopped:
                stopped.append(signum)
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            async with app.router.lifespan_context(app):
                await stop.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    asyncio.run(main())
    return stopped[0] if stopped else None
