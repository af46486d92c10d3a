"""Hostile HTTP against a real hub: oversized bodies on every POST (declared, and chunked with no
Content-Length), slow clients that trickle a body or headers byte by byte, and path traversal in
tile paths. Raw sockets, so the bytes on the wire are exactly the attacker's."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from hubkit import HubProcess
from syskit import FAST, wait_until

ENVELOPE_TYPE = "application/vnd.ncii.envelope"
BODY_DEADLINE = 2.0


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """One hub for this module (requests here never change its state)."""
    base = tmp_path_factory.mktemp("hostile")
    proc = HubProcess(
        base / "data",
        f"sqlite:///{base / 'hub.sqlite3'}",
        (*FAST, "--set", f"body_read_seconds={BODY_DEADLINE}"),
    ).start()
    yield proc
    proc.kill()


def post_paths(hub: HubProcess) -> list[str]:
    spec = httpx.get(hub.url + "/openapi.json", timeout=30).json()
    return sorted(p for p, ops in spec["paths"].items() if "post" in ops and "{" not in p)


def connect(hub: HubProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", hub.port), timeout=30)


def read_response(sock: socket.socket, timeout: float = 30.0) -> tuple[int, bytes]:
    """Status code and raw bytes of the first response (0 if the server just closed)."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionResetError, TimeoutError):
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                while len(rest) < int(value):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    rest += chunk
                data = head + b"\r\n\r\n" + rest
    if not data.startswith(b"HTTP/1.1 "):
        return 0, data
    return int(data[9:12]), data


def answered(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def flood(sock: socket.socket, head: bytes, chunk: bytes, limit: int) -> int:
    """Send ``head`` then ``chunk`` repeatedly until the server answers, closes, or ``limit``
    bytes went out; returns how many body bytes were sent."""
    sock.sendall(head)
    sent = 0
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        while sent < limit and not answered(sock):
            sock.sendall(chunk)
            sent += len(chunk)
    return sent


@pytest.mark.parametrize("how", ["declared", "chunked"])
def test_oversized_bodies_on_every_post(hub: HubProcess, how: str) -> None:
    paths = post_paths(hub)
    assert {"/v1/submissions", "/v1/status", "/v1/withdrawals", "/v1/feed/ack"} <= set(paths)
    for path in paths:
        with connect(hub) as sock:
            if how == "declared":
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ENVELOPE_TYPE}\r\n"
                    "Content-Length: 500000000\r\n\r\n"
                ).encode()
                sent = flood(sock, head, b"\0" * 65536, 64 << 20)
            else:
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ENVELOPE_TYPE}\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n"
                ).encode()
                sent = flood(sock, head, b"10000\r\n" + b"\0" * 65536 + b"\r\n", 64 << 20)
            status, raw = read_response(sock)
        assert status == 413, (path, raw[:300])
        assert b'"body_too_large"' in raw, path
        # refused long before the attacker could send 64 MiB (socket buffers hold a few MiB)
        assert sent < 24 << 20, (path, sent)
    assert httpx.get(hub.url + "/v1/log", timeout=30).status_code == 200


def test_trickled_body_times_out_while_others_are_served(hub: HubProcess) -> None:
    stop = threading.Event()
    results: list[tuple[int, float]] = []

    def trickle() -> None:
        with connect(hub) as sock:
            sock.sendall(
                (
                    f"POST /v1/submissions HTTP/1.1\r\nHost: x\r\nContent-Type: {ENVELOPE_TYPE}"
                    "\r\nContent-Length: 1000\r\n\r\n"
                ).encode()
            )
            began = time.monotonic()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                for _ in range(1000):
                    if stop.is_set() or answered(sock):
                        break
                    sock.sendall(b"\0")
                    time.sleep(0.1)
            status, _ = read_response(sock)
            results.append((status, time.monotonic() - began))

    slow = [threading.Thread(target=trickle) for _ in range(20)]
    for t in slow:
        t.start()
    try:
        # while 20 slow clients trickle, normal clients are served promptly
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            for _ in range(10):
                began = time.monotonic()
                assert client.get("/v1/log").status_code == 200
                assert time.monotonic() - began < 2.0
        for t in slow:
            t.join(60)
    finally:
        stop.set()
    assert len(results) == 20
    for status, seconds in results:
        assert status == 408  # request_timeout, at the deadline, not after 100 s of trickle
        assert BODY_DEADLINE - 0.5 <= seconds < BODY_DEADLINE + 10


def test_trickled_headers_do_not_block_other_clients(hub: HubProcess) -> None:
    """While 50 clients trickle their headers (closed after header_timeout, 10 s by default:
    tests/system/test_idle_connections.py), the hub still serves everyone else."""
    socks = [connect(hub) for _ in range(50)]
    try:
        for i, sock in enumerate(socks):
            sock.sendall(b"GET /v1/log HTTP/1.1\r\nHo")
            if i % 10 == 0:
                sock.sendall(b"s")
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            for _ in range(10):
                began = time.monotonic()
                assert client.get("/checkpoint").status_code == 200
                assert time.monotonic() - began < 2.0
    finally:
        for sock in socks:
            sock.close()


TRAVERSALS = [
    "/tile/../canary.txt",
    "/tile/../../canary.txt",
    "/tile/..%2fcanary.txt",
    "/tile/%2e%2e/canary.txt",
    "/tile/%2e%2e%2fcanary.txt",
    "/tile/%252e%252e/canary.txt",
    "/tile/0/../../canary.txt",
    "/tile/entries/../../canary.txt",
    "/tile/entries/%2e%2e/%2e%2e/log.key",
    "/tile//etc/passwd",
    "/tile/%2fetc%2fpasswd",
    "/tile/0/000%00",
    "/tile/0/%00/../../canary.txt",
    "/tile/0/000.p/1%00.txt",
    "/tile/..\\..\\canary.txt",
    "/tile/0/-1",
    "/tile/99999999999999999999/000",
    "/tile/0/x001/002",
    "/tile/" + "0/" * 2000 + "000",
    "/../canary.txt",
    "/%2e%2e/canary.txt",
]


@pytest.mark.parametrize("target", TRAVERSALS, ids=range(len(TRAVERSALS)))
def test_tile_path_traversal(hub: HubProcess, target: str) -> None:
    secret = b"CANARY-" + str(hub.port).encode()
    (hub.data_dir / "canary.txt").write_bytes(secret)
    (hub.data_dir / "tiles").mkdir(exist_ok=True)
    wait_until(lambda: (hub.data_dir / "tiles" / "checkpoint").exists())
    with connect(hub) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        status, raw = read_response(sock)
    assert status in (400, 404, 414, 431), raw[:300]
    assert secret not in raw and b"root:" not in raw
    log_key = (hub.data_dir / "log.key").read_bytes().strip()
    assert log_key not in raw
