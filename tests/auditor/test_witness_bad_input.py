"""The witness answers 4xx, never 5xx or a traceback, to any bad input (issue 12, finding 6).

Over real HTTP against ``ncii-audit witness serve``: deeply nested, huge (declared, chunked,
undeclared), malformed and non-UTF-8 bodies, absurd numbers, odd paths and broken HTTP.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import httpx
import pytest
from auditkit import MemLog, WitnessProcess

from crypto.witness_protocol import MAX_REQUEST_BYTES, encode_add_checkpoint

NESTED = b"[" * 500_000 + b"]" * 500_000


@pytest.fixture(scope="module")
def witness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WitnessProcess, MemLog]]:
    """One witness for the module (each test only sends it bad input)."""
    log = MemLog()
    log.grow(5)
    proc = WitnessProcess(tmp_path_factory.mktemp("w"), "w1", [f"{log.origin}={log.vkey}"])
    proc.start()
    yield proc, log
    proc.kill()


def _bodies(log: MemLog) -> Iterator[tuple[str, bytes]]:
    note = log.note()
    yield "nested-json", NESTED[: MAX_REQUEST_BYTES // 2] + NESTED[-MAX_REQUEST_BYTES // 2 :]
    yield "nested-object", b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    yield "json", b'{"old": 0, "checkpoint": "x"}'
    yield "empty", b""
    yield "not-utf8", b"\xff\xfe\x00" * 1000
    yield "nul", b"old 0\n\n\x00\x00\x00\n"
    yield "huge-old-size", b"old " + b"9" * 100_000 + b"\n\n" + note
    yield "negative-old", b"old -1\n\n" + note
    yield "bad-proof-line", b"old 0\n" + b"A" * 10_000 + b"\n\n" + note
    yield "64-proof-lines", b"old 1\n" + b"AAAA\n" * 64 + b"\n" + note
    yield "note-nested", b"old 0\n\n" + b"[" * 100_000 + b"\n\n" + note
    yield "size-digits", b"old 0\n\n" + note.replace(b"\n5\n", b"\n" + b"9" * 5000 + b"\n", 1)
    yield "origin-not-utf8", b"old 0\n\n" + note.replace(log.origin.encode(), b"\xff\xfe", 1)
    yield "many-signatures", b"old 0\n\n" + note + b"\xe2\x80\x94 x AAAA\n" * 10_000
    yield "too-big", b"old 0\n\n" + b"x" * (MAX_REQUEST_BYTES + 1)
    yield "valid-but-wrong-old", encode_add_checkpoint(3, [], note)


def _no_server_error(response: httpx.Response, what: str) -> None:
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text[:300])
    assert b"Traceback" not in response.content and b'File "' not in response.content


def test_every_bad_body_is_a_4xx(witness: tuple[WitnessProcess, MemLog]) -> None:
    proc, log = witness
    with httpx.Client(base_url=proc.url, timeout=30) as client:
        for what, body in _bodies(log):
            _no_server_error(client.post("/add-checkpoint", content=body), what)
            # The same body without a Content-Length (chunked): the stream is capped too.
            chunked = client.post("/add-checkpoint", content=iter([body[:7], body[7:]]))
            _no_server_error(chunked, what + " (chunked)")
        endless = (b"x" * 65536 for _ in range(1 << 14))  # 1 GiB if it were read whole
        _no_server_error(client.post("/add-checkpoint", content=endless), "endless chunked")
        for path in ("/checkpoint/%ff%fe", "/checkpoint/" + "a" * 8000, "/checkpoint/%00"):
            answer = client.get(path)
            _no_server_error(answer, path)
        _no_server_error(client.get("/add-checkpoint"), "GET add-checkpoint")
        # Still a working witness afterwards.
        good = client.post("/add-checkpoint", content=encode_add_checkpoint(0, [], log.note()))
        assert good.status_code == 200, good.text
    log_text = proc.log_path.read_text(errors="replace")
    assert "Traceback" not in log_text and "Exception in ASGI" not in log_text, log_text[-2000:]


def _raw(port: int, data: bytes) -> bytes:
    """Send ``data``, half-close, read the answer. The witness may answer and close before
    it has read everything (a 431 for a long head): then the send or the half-close fails
    and what it sent is still there to read (or the reset took it: no answer)."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7"
        b"\r\n\r\nold 0\n",
        b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"ffffffffffffffffffff\r\n",
        b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\nold 0\n",
        b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\nold 0\n",
        b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: "
        + str(1 << 70).encode()
        + b"\r\n\r\nold 0\n",
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"X: " + b"b" * 100_000 + b"\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 100,
    ],
    ids=[
        "two-lengths",
        "huge-chunk",
        "length-abc",
        "length-negative",
        "length-2^70",
        "long-target",
        "long-header",
        "tls-hello",
    ],
)
def test_broken_http_is_a_4xx(witness: tuple[WitnessProcess, MemLog], request_bytes: bytes) -> None:
    proc, _ = witness
    answer = _raw(proc.port, request_bytes)
    if answer:  # closing without an answer is fine too; a 5xx is not
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status < 500, answer[:300]
    assert b"Traceback" not in answer


def test_the_witness_log_stays_quiet_about_one_bad_peer(
    witness: tuple[WitnessProcess, MemLog],
) -> None:
    """Repeated bad requests are logged at a bounded rate, not once each."""
    proc, _ = witness

    def invalid_lines() -> int:
        lines = proc.log_path.read_text(errors="replace").splitlines()
        return sum("Invalid HTTP" in line for line in lines)

    before = invalid_lines()
    for _ in range(300):
        _raw(proc.port, b"NOT HTTP AT ALL\r\n\r\n")
    assert invalid_lines() - before <= 6, invalid_lines() - before
