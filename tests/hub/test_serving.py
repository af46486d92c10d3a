"""hub.serving pieces without a server: the repeat filter that bounds log floods, the
open-file limit and the connection cap derived from it, the startup heap kept from the
collector."""

from __future__ import annotations

import io
import logging
import resource
import subprocess
import sys

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


def test_the_startup_heap_is_frozen_out_of_full_collections() -> None:
    # In a child: freezing is process-wide, and this test process must keep its own GC.
    code = (
        "import gc\n"
        "import hub.app\n"
        "from hub.serving import freeze_startup_heap\n"
        "before = len(gc.get_objects())\n"
        "frozen = freeze_startup_heap()\n"
        "left = len(gc.get_objects())\n"
        "print(frozen, before, left)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    frozen, before, left = (int(x) for x in out)
    assert frozen > 50_000  # the imported app's modules, functions, classes, tables
    assert left < before // 10  # a full collection now walks a tenth of what it did
