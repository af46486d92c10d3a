"""hub.serving pieces without a server: the repeat filter that bounds log floods, the
open-file limit and the connection cap derived from it."""

from __future__ import annotations

import io
import logging
import resource

from hub.serving import (
    FD_RESERVE,
    LISTEN_BACKLOG,
    RepeatFilter,
    connection_cap,
    raise_open_file_limit,
)


def test_a_million_identical_errors_become_a_few_lines() -> None:
    now = [0.0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RepeatFilter(burst=5, period=60.0, clock=lambda: now[0]))
    logger = logging.getLogger("test.serving.flood")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for _ in range(100_000):  # what asyncio logs when accept() fails with EMFILE
            logger.error("socket.accept() out of system resource", exc_info=OSError(24, "x"))
        logger.error("another message %d", 1)
        assert stream.getvalue().count("out of system resource") == 5
        assert "another message 1" in stream.getvalue()
        now[0] = 61.0
        logger.error("socket.accept() out of system resource")
        last = stream.getvalue().splitlines()[-1]
        assert (
            last == "socket.accept() out of system resource [99995 more like this were not logged]"
        )
        assert len(stream.getvalue()) < 20_000
    finally:
        logger.removeHandler(handler)


def test_keys_are_bounded() -> None:
    f = RepeatFilter(max_keys=10)
    for i in range(1000):
        f.filter(logging.LogRecord("x", logging.ERROR, "p", 1, f"message {i}", None, None))
    assert len(f._seen) == 10


def test_open_file_limit_and_cap() -> None:
    limit = raise_open_file_limit()
    assert limit == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert limit >= resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert connection_cap(1024, 1_000_000) == 1024
    assert connection_cap(1024, 2048) == 2048 - LISTEN_BACKLOG - FD_RESERVE
    assert connection_cap(1024, 100) == 16
