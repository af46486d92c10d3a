"""Run an ASGI app under uvicorn with the connection bounds uvicorn lacks: a header timeout.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) and answers 503 past
``limit_concurrency`` open connections, but a client that sends its request headers one byte
at a time keeps a connection (and one of those slots) forever. :class:`_HeaderTimeout` closes
a connection whose request headers are not complete within ``header_timeout`` seconds of the
connection opening or of the previous response. Bodies are timed by the app itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["run"]


class _HeaderTimeout(H11Protocol):
    """h11 protocol that closes connections waiting too long for complete request headers."""

    header_timeout = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_request():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self._in_request():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _in_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        if not self._in_request() and not self.transport.is_closing():
            self.transport.close()


def run(
    app: Any,
    *,
    host: str,
    port: int,
    header_timeout: float,
    max_connections: int,
    keep_alive: float = 5.0,
    log_format: str = "text",
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM: h11, no access log (requests carry secrets).

    With ``log_format="json"`` uvicorn leaves logging alone (``log_config=None``): its records
    reach the root handler of :func:`partner_sdk.logformat.configure_logging`.
    """
    extra: dict[str, Any] = {"log_config": None} if log_format == "json" else {}
    protocol = type("HeaderTimeoutProtocol", (_HeaderTimeout,), {"header_timeout": header_timeout})
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        limit_concurrency=max_connections,
        timeout_keep_alive=max(1, round(keep_alive)),
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        **extra,
    )
    run_until_stopped(config)


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


def run_until_stopped(config: uvicorn.Config) -> None:
    """Serve until SIGINT (then KeyboardInterrupt, for exit status 130) or SIGTERM (return)."""
    server = StopOnSignal(config)
    server.run()
    if server.stopped_by == signal.SIGINT:
        raise KeyboardInterrupt
