"""Issue 12 finding 4: idle connections must not take the hub down or flood its log.

A real ``ncii-hub serve`` whose open-file limit is 4096 (so the attack fits a test machine;
the report had 21,000 connections against a larger limit) gets 5000 connections that send half
a request line and then nothing. Before the fix the hub ran out of file descriptors
(``/checkpoint`` stopped answering) and asyncio logged "socket.accept() out of system resource"
over and over. Now: connections are capped (``max_connections``; beyond it the oldest
connection still waiting for its request head is closed), a request head must arrive within
``header_timeout``, repeated log lines are rate-limited, and a well-behaved client gets
``/checkpoint`` and a signed submission through within seconds. SQLite only: the connection
layer is the same whatever the database.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hubkit import Case, HubProcess, mixed_hashes, post
from syskit import FAST

HUB_FILES = 4096  # the hub's RLIMIT_NOFILE (soft and hard) in this test
IDLE = 5000  # more than the hub could ever hold open
CAP = 1024  # max_connections (the default)
HEADER_TIMEOUT = 3.0


class LimitedHub(HubProcess):
    """``ncii-hub serve`` exec'd (same pid) under a lower open-file limit."""

    def command(self) -> list[str]:
        boot = (
            "import os, resource, sys; "
            f"resource.setrlimit(resource.RLIMIT_NOFILE, ({HUB_FILES}, {HUB_FILES})); "
            "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
        )
        return [sys.executable, "-c", boot, *super().command()[1:]]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    proc = LimitedHub(
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'hub.sqlite3'}",
        (*FAST, "--set", f"header_timeout={HEADER_TIMEOUT}"),
    ).start()
    yield proc
    proc.kill()


@pytest.fixture
def idle_sockets() -> Iterator[list[socket.socket]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < IDLE + 512:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, IDLE + 1024), hard))
    socks: list[socket.socket] = []
    yield socks
    for sock in socks:
        sock.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def closed_by_peer(sock: socket.socket) -> bool:
    """The hub closed this connection (EOF or reset), without blocking."""
    sock.setblocking(False)
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_idle_connections_do_not_starve_real_clients(
    hub: HubProcess, idle_sockets: list[socket.socket]
) -> None:
    assert hub.proc is not None
    began = time.monotonic()
    for _ in range(IDLE):
        sock = socket.socket()
        sock.settimeout(2.0)
        try:
            sock.connect(("127.0.0.1", hub.port))
            sock.sendall(b"GET /checkpoint HTT")  # half a request line, then nothing
        except OSError:
            sock.close()
            continue
        idle_sockets.append(sock)
        if time.monotonic() - began > 60:
            break
    assert len(idle_sockets) >= IDLE * 0.9, len(idle_sockets)

    # A well-behaved client is served promptly while the attacker holds its connections.
    with httpx.Client(base_url=hub.url, timeout=10.0) as client:
        t0 = time.monotonic()
        r = client.get("/checkpoint")
        assert r.status_code == 200 and time.monotonic() - t0 < 5.0
        t0 = time.monotonic()
        r = post(client, "/v1/submissions", Case().submission(mixed_hashes(2)))
        assert r.status_code == 202, r.text
        assert time.monotonic() - t0 < 5.0

    # Bounded: the hub holds at most about max_connections of them open.
    assert open_fds(hub.proc.pid) < CAP + 400
    # ... and closes every idle one after the header timeout.
    deadline = time.monotonic() + HEADER_TIMEOUT + 15
    while time.monotonic() < deadline:
        still = [s for s in idle_sockets if not closed_by_peer(s)]
        if not still:
            break
        idle_sockets[:] = still
        time.sleep(0.5)
    assert not still, f"{len(still)} idle connections still open"

    with httpx.Client(base_url=hub.url, timeout=10.0) as client:
        assert client.get("/checkpoint").status_code == 200
    out = hub.output()
    assert len(out) < 20_000, out[-3000:]  # a few summary lines, not a flood
    # counted and summarised (evictions, or on a slow machine timeouts before the cap is hit)
    assert "ncii.hub.serving connections:" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]


def test_a_slow_request_head_is_closed_after_the_header_timeout(hub: HubProcess) -> None:
    """Trickled header bytes do not extend the deadline (it counts from the first byte)."""
    with socket.create_connection(("127.0.0.1", hub.port), timeout=30) as sock:
        sock.sendall(b"GET /checkpoint HTTP/1.1\r\nX-Slow: ")
        began = time.monotonic()
        with contextlib.suppress(OSError):
            while time.monotonic() - began < HEADER_TIMEOUT + 10 and not closed_by_peer(sock):
                sock.sendall(b"a")
                time.sleep(0.2)
        took = time.monotonic() - began
    assert HEADER_TIMEOUT - 0.5 <= took < HEADER_TIMEOUT + 3, took
