"""Idle connections cannot lock a witness (issue 12, finding 4, the witness's share).

A real ``ncii-audit witness serve`` with a 2 s request-head deadline and a cap of 300
connections gets 2,000 loopback connections that never finish their request head; an honest
add-checkpoint and a GET still succeed promptly (under 5 s together), and every idle connection
is closed by the witness within the deadline (or earlier, evicted by the cap).
"""

from __future__ import annotations

import resource
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from auditkit import MemLog, WitnessProcess

from crypto.witness_protocol import encode_add_checkpoint

IDLE = 2000
HEADER_TIMEOUT = 2.0
CAP = 300
LIMITS = (
    "--header-timeout", str(HEADER_TIMEOUT),
    "--max-connections", str(CAP),
    "--body-timeout", "3",
)  # fmt: skip


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[WitnessProcess, MemLog]]:
    log = MemLog()
    log.grow(5)
    proc = WitnessProcess(
        tmp_path / "w",
        "w1",
        [f"{log.origin}={log.vkey}"],
        extra=LIMITS,
    )
    proc.start()
    yield proc, log
    proc.kill()


def _open_idle(port: int, n: int) -> list[socket.socket]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))
    idle = []
    for i in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if i % 2:  # half send the start of a head, then nothing
            sock.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nX-Slow: ")
        sock.setblocking(False)
        idle.append(sock)
    return idle


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_idle_connections_are_closed_and_honest_requests_served(
    guarded: tuple[WitnessProcess, MemLog],
) -> None:
    proc, log = guarded
    started = time.monotonic()
    idle = _open_idle(proc.port, IDLE)
    try:
        opened = time.monotonic()
        with httpx.Client(base_url=proc.url, timeout=10) as client:
            t0 = time.monotonic()
            answer = client.post(
                "/add-checkpoint", content=encode_add_checkpoint(0, [], log.note())
            )
            assert answer.status_code == 200, answer.text
            assert client.get("/witness").status_code == 200
            assert time.monotonic() - t0 < 5.0, "the honest requests waited on idle connections"

        # Every idle connection is closed by the witness: evicted, or at its deadline.
        selector = selectors.DefaultSelector()
        for sock in idle:
            selector.register(sock, selectors.EVENT_READ)
        pending = set(idle)
        deadline = opened + HEADER_TIMEOUT + 10
        while pending and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if _closed_by_peer(sock):
                    selector.unregister(sock)
                    pending.discard(sock)
        assert not pending, f"{len(pending)} idle connections still open after the deadline"
        assert time.monotonic() - started < 60
    finally:
        for sock in idle:
            sock.close()

    # Still serving afterwards, and the log did not get one line per connection.
    assert httpx.get(proc.url + "/witness", timeout=5).status_code == 200
    lines = proc.log_path.read_text(errors="replace").splitlines()
    assert sum("connection cap" in line for line in lines) <= 12, lines[-20:]


def _answer_then_close(sock: socket.socket, limit: float) -> bytes:
    """Everything the witness sends until it closes the connection (within ``limit`` s)."""
    sock.settimeout(limit)
    t0 = time.monotonic()
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
        assert time.monotonic() - t0 < limit
    return b"".join(chunks)


def test_a_trickled_body_is_cut_off(guarded: tuple[WitnessProcess, MemLog]) -> None:
    """The head arrives in time but the body never completes: 408 within the body deadline,
    then the witness closes the connection (a trickler cannot keep it after the answer)."""
    proc, _ = guarded
    with socket.create_connection(("127.0.0.1", proc.port), timeout=60) as sock:
        sock.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 100\r\n\r\nold")
        answer = _answer_then_close(sock, 15)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_a_refused_body_closes_the_connection(guarded: tuple[WitnessProcess, MemLog]) -> None:
    proc, _ = guarded
    with socket.create_connection(("127.0.0.1", proc.port), timeout=60) as sock:
        sock.sendall(
            b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 99999999\r\n\r\nold"
        )
        answer = _answer_then_close(sock, 5)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
