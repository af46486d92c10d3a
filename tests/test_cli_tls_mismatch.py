"""An https:// address pointed at a plain-HTTP server (or http:// at a TLS server) is named as
such by every client, not "connection refused" (issue 18, finding 9)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from serverkit import POLL

from crypto.keys import ALG_ED25519, SignerKey

BIN = Path(sys.executable).parent
LOG_KEY = SignerKey("log.example", ALG_ED25519, b"\x07" * 32).verifier.encode()


class _Plain(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def plain_http() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Plain)
    threading.Thread(target=server.serve_forever, kwargs=POLL, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def tls_only() -> Iterator[int]:
    """A server that answers anything with a TLS alert record, as a TLS server may do to a
    plain HTTP request. (Servers that answer such a request with an HTTP 400 page, as nginx
    does, are not detected: that answer is plain HTTP.)"""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(4096)
                    conn.sendall(b"\x15\x03\x03\x00\x02\x02\x46")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def _run(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, input=stdin, check=False
    )


def _client(url: str, home: Path) -> subprocess.CompletedProcess[str]:
    made = _run(str(BIN / "ncii-client"), "case", "new", "--home", str(home))
    assert made.returncode == 0, made.stderr
    return _run(str(BIN / "ncii-client"), "status", "--hub", url, "--home", str(home))


def _partner(url: str, folder: Path) -> subprocess.CompletedProcess[str]:
    made = _run(str(BIN / "ncii-partner"), "init", "--dir", str(folder), "--name", "p1")
    assert made.returncode == 0, made.stderr
    return _run(
        str(BIN / "ncii-partner"), "sync", "--hub", url, "--log-key", LOG_KEY,
        "--dir", str(folder),
    )  # fmt: skip


def _audit(url: str, folder: Path) -> subprocess.CompletedProcess[str]:
    return _run(
        str(BIN / "ncii-audit"), "monitor", "--log", url + "/", "--log-key", LOG_KEY,
        "--once", "--state", str(folder),
    )  # fmt: skip


@pytest.mark.parametrize("tool", [_client, _partner, _audit], ids=["client", "partner", "audit"])
def test_https_to_a_plain_http_server_is_named(tool, plain_http: int, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    done = tool(f"https://127.0.0.1:{plain_http}", tmp_path / "d")
    assert done.returncode == 3, done.stderr
    assert "plain HTTP, not HTTPS" in done.stderr and "http://" in done.stderr
    assert "refused" not in done.stderr


@pytest.mark.parametrize("tool", [_client, _partner, _audit], ids=["client", "partner", "audit"])
def test_http_to_a_tls_server_is_named(tool, tls_only: int, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    done = tool(f"http://127.0.0.1:{tls_only}", tmp_path / "d")
    assert done.returncode == 3, done.stderr
    assert "probably speaks HTTPS" in done.stderr and "https://" in done.stderr
