"""A witness URL may carry credentials (``https://user:pass@host/``): the hub must use them
to reach the witness and show them nowhere (a query is refused: /add-checkpoint is appended
to the URL). Attack: a hub whose witness URL holds a password, a witness that answers and one
that fails; the password may not appear in ``/v1/witnesses`` (public), ``/metrics``, the
start-up lines, the log (text and JSON, httpx's own request lines included) or a settings
error."""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hubkit import PROJECT_ROOT, Case, HubProcess, mixed_hashes, post

from crypto.keys import ALG_COSIGNATURE_V1, generate_signer_key

PASSWORD = "pw-s3cret-7f2a"
TOKEN = "tok-s3cret-91bc"
SECRETS = (PASSWORD, TOKEN)


class Stub:
    """A witness address that answers every request with 503 and remembers what it got."""

    def __init__(self) -> None:
        self.auth: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                stub.auth.append(self.headers.get("authorization", ""))
                self.send_response(503)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.close()


def witness_key() -> str:
    return generate_signer_key("w.example.org", ALG_COSIGNATURE_V1).verifier.encode()


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} appears in {where}"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_witness_credentials_never_shown(stub: Stub, tmp_path: Path, log_format: str) -> None:
    # A token in the path (some gateways), a password in the userinfo.
    answering = f"http://ops:{PASSWORD}@127.0.0.1:{stub.port}/w1"
    refusing = f"http://ops:{PASSWORD}@127.0.0.1:1/w2"  # nothing listens
    data = tmp_path / "data"
    hub = HubProcess(
        data,
        f"sqlite:///{tmp_path / 'hub.sqlite3'}",
        (
            "--set", "batch_interval=0.05",
            "--set", "witness_max_backoff=0.5",
            "--set", "witness_timeout=2",
            "--log-level", "info",
            "--log-format", log_format,
            "--witness", f"w1={answering}={witness_key()}",
            "--witness", f"w2={refusing}={witness_key()}",
        ),
    )  # fmt: skip
    try:
        hub.start()
        with hub.client() as client:
            assert post(client, "/v1/submissions", Case().submission(mixed_hashes(1))).is_success
            deadline = time.monotonic() + 20
            while len(stub.auth) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            # The credentials were used: the witness got them as Basic authentication.
            assert stub.auth, "the hub never reached the witness"
            sent = base64.b64decode(stub.auth[0].removeprefix("Basic ")).decode()
            assert sent == f"ops:{PASSWORD}"
            listing = client.get("/v1/witnesses")
            assert listing.status_code == 200
            assert_no_secret(listing.text, "/v1/witnesses")
            urls = [w["url"] for w in listing.json()["witnesses"]]
            assert all(f"127.0.0.1:{p}" in u for u, p in zip(urls, (stub.port, 1), strict=True))
            assert_no_secret(client.get("/metrics").text, "/metrics")
    finally:
        hub.terminate()
    assert hub.log_path is not None
    log = hub.log_path.read_text(errors="replace")
    assert "HTTP Request: POST" in log  # httpx's own line, with the witness URL, was logged
    assert_no_secret(log, "the hub's output")


def test_witness_option_error_shows_no_secret(tmp_path: Path) -> None:
    """A malformed ``--witness`` (the key forgotten) is refused without echoing the URL."""
    for value in (
        f"w1=https://ops:{PASSWORD}@witness.example/",  # no =VKEY
        f"w1=https://ops:{PASSWORD}@witness.example/?token={TOKEN}",
        f"w1=https://ops:{PASSWORD}@witness.example/?token={TOKEN}=not-a-key",
        f"w1=https://ops:{PASSWORD}@witness.example/?{TOKEN}={witness_key()}",  # a query
        f"w1=https://ops:{PASSWORD}@witness.example/#{TOKEN}={witness_key()}",
        f"w 1=https://ops:{PASSWORD}@witness.example/?token={TOKEN}=x",  # bad name
    ):
        done = subprocess.run(
            [
                sys.executable, "-m", "hub.cli", "serve",
                "--data", str(tmp_path / "data"),
                "--port", "1",
                "--witness", value,
            ],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode != 0
        assert "witness" in done.stderr
        assert_no_secret(done.stdout + done.stderr, f"the error for {value[:12]}")


def test_witness_file_error_shows_no_secret(tmp_path: Path) -> None:
    listing = tmp_path / "witnesses.txt"
    listing.write_text(f"w1=https://ops:{PASSWORD}@witness.example/\n")
    done = subprocess.run(
        [
            sys.executable, "-m", "hub.cli", "serve",
            "--data", str(tmp_path / "data"), "--port", "1",
            "--witness-file", str(listing),
        ],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0 and "witnesses.txt:1" in done.stderr
    assert_no_secret(done.stdout + done.stderr, "the witnesses file error")
