"""A total deadline for reading a request body (slow-client protection).

Why: uvicorn has no read timeout for request bodies; a client that trickles its body one byte
at a time would hold a connection and a request task for as long as it likes. This ASGI
middleware bounds the whole body read: once ``seconds`` have passed since the request started,
the next wait for body bytes raises HubError 408 ``request_timeout`` (specs/hub-api.md 5/6).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hub.errors import HubError

__all__ = ["BodyDeadline"]

Scope = dict[str, Any]
Message = dict[str, Any]


class BodyDeadline:
    """Wraps ``receive`` so that reading the body takes at most ``seconds`` in total."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.seconds

        async def bounded_receive() -> Message:
            remaining = deadline - time.monotonic()
            try:
                message: Message = await asyncio.wait_for(receive(), max(remaining, 0.001))
            except TimeoutError:
                raise HubError(
                    408,
                    "request_timeout",
                    f"the request body did not arrive within {self.seconds:g} s; send it at once",
                ) from None
            return message

        await self.app(scope, bounded_receive, send)
