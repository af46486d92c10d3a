"""``ncii-client ui`` is not a proxy. Attacks over raw sockets against a UiServer whose hub is
a recorder: absolute-form and authority-form targets (``GET http://evil/``, ``CONNECT``),
encoded slashes and dot segments in the route, a second request smuggled in a GET's body, a
POST whose Content-Length is larger than what is sent, and a puzzle header with control
characters. Nothing but allowed routes ever reaches the hub, and only with the page's own
token and Host."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hubkit import web_with_log_key_meta
from serverkit import POLL

from client.ui.forward import HubForwarder
from client.ui.server import UiServer, new_token
from client.ui.webapp import load_web_app

ENVELOPE = "application/vnd.ncii.envelope"


class Recorder:
    def __init__(self) -> None:
        self.paths: list[str] = []
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                n = int(self.headers.get("content-length", "0") or 0)
                if n:
                    self.rfile.read(n)
                rec.paths.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs=POLL, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[UiServer, Recorder]]:
    hub = Recorder()
    token = new_token()
    app = load_web_app(web_with_log_key_meta(tmp_path / "web"), token, None)
    server = UiServer(app, token, HubForwarder(hub.url))
    threading.Thread(target=server.serve_forever, kwargs=POLL, daemon=True).start()
    yield server, hub
    server.shutdown()
    server.server_close()
    hub.close()


def raw(server: UiServer, data: bytes, wait: float = 3.0) -> bytes:
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=wait) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            pass
    return out


def statuses(answer: bytes) -> list[int]:
    return [int(line.split()[1]) for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.")]


def test_not_a_proxy(setup: tuple[UiServer, Recorder]) -> None:
    server, hub = setup
    t, port = server.token, server.server_address[1]
    host = f"Host: 127.0.0.1:{port}\r\n".encode()
    for target in (
        f"http://127.0.0.1:{port}/{t}/v1/log",  # absolute form, even naming this server
        f"http://evil.example/{t}/v1/log",
        "evil.example:443",
    ):
        for method in ("GET", "CONNECT"):
            answer = raw(server, f"{method} {target} HTTP/1.1\r\n".encode() + host + b"\r\n")
            assert statuses(answer)[0] in (403, 405, 400), (method, target, answer[:80])
    for route in ("v1%2flog", "v1/./log", "v1/../v1/log", "tile/0/../../metrics", "v1/log/"):
        answer = raw(server, f"GET /{t}/{route} HTTP/1.1\r\n".encode() + host + b"\r\n")
        assert statuses(answer)[0] == 404, route
    assert hub.paths == []


def test_smuggled_and_short_bodies(setup: tuple[UiServer, Recorder]) -> None:
    server, hub = setup
    t, port = server.token, server.server_address[1]
    host = f"Host: 127.0.0.1:{port}\r\n".encode()
    # A GET with a body holding a second request for the hub, with a hostile Host: at most
    # the first (allowed) GET reaches the hub; the smuggled one is refused on its Host.
    inner = f"POST /{t}/v1/submissions HTTP/1.1\r\nHost: evil.example\r\n".encode()
    inner += f"Content-Type: {ENVELOPE}\r\nContent-Length: 2\r\n\r\n{{}}".encode()
    outer = f"GET /{t}/v1/log HTTP/1.1\r\n".encode() + host
    outer += f"Content-Length: {len(inner)}\r\n\r\n".encode() + inner
    raw(server, outer)
    assert all(not p.startswith("POST") for p in hub.paths), hub.paths
    # A POST announcing more than it sends: refused, nothing forwarded.
    short = f"POST /{t}/v1/status HTTP/1.1\r\n".encode() + host
    short += f"Content-Type: {ENVELOPE}\r\nContent-Length: 100\r\n\r\n".encode() + b"x" * 10
    answer = raw(server, short, wait=40.0)
    assert statuses(answer)[0] == 400
    # A puzzle header with control characters never reaches the hub as such.
    bad = f"POST /{t}/v1/submissions HTTP/1.1\r\n".encode() + host
    bad += f"Content-Type: {ENVELOPE}\r\nNCII-Case-Puzzle: a\x01b\x7f\r\n".encode()
    bad += b"Content-Length: 2\r\n\r\n{}"
    answer = raw(server, bad)
    assert statuses(answer)[0] in (400, 502)
    assert all(not p.startswith("POST /v1/submissions") for p in hub.paths), hub.paths
