"""Helpers for client tests: photos on disk, the CLI in a subprocess, a recording proxy.

The proxy sits between the client and a real hub and keeps every request it forwards, so a
test can prove what reached the hub (the privacy test) or make the hub look down / busy.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from PIL import Image
from skimage import data as skdata

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket")


def make_photos(folder: Path, names: tuple[str, ...] = PHOTOS) -> list[Path]:
    """JPEGs of scikit-image's sample photos, plus nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        path = folder / f"{name}.jpg"
        Image.fromarray(getattr(skdata, name)()).save(path, quality=90)
        out.append(path)
    return out


def make_flat(path: Path) -> Path:
    """A picture of one colour: PDQ quality 0, must never be sent."""
    Image.new("RGB", (128, 128), (20, 20, 20)).save(path)
    return path


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(
    *args: str, home: Path | None = None, timeout: float = 120.0, subprocess_: bool = False
) -> CliResult:
    """``ncii-client ARGS``: in this process through ``client.cli.main`` (fast), or with
    ``subprocess_=True`` as a real command (stdin closed either way: no terminal to ask on)."""
    argv = [*args, *(["--home", str(home)] if home is not None else [])]
    if not subprocess_:
        return _run_inprocess(argv)
    env = {k: v for k, v in os.environ.items() if k != "NCII_CLIENT_HOME"}
    proc = subprocess.run(
        [sys.executable, "-m", "client.cli", *argv],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def _run_inprocess(argv: list[str]) -> CliResult:
    from client.cli import main

    out, err = io.StringIO(), io.StringIO()
    stdin = sys.stdin
    try:
        sys.stdin = io.StringIO("")  # not a terminal: confirmations need --yes
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse usage errors
                code = int(exc.code or 0)
    finally:
        sys.stdin = stdin
    return CliResult(code, out.getvalue(), err.getvalue())


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ProxyControl:
    """What the proxy does: forward (default), or answer ``status`` itself for the next
    ``count`` requests (e.g. 429 with Retry-After, 500), or drop connections (down)."""

    upstream: str
    down: bool = False
    fail_status: int | None = None
    fail_count: int = 0
    retry_after: str | None = None
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RecordingProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.control = ProxyControl(upstream)
        self.http = httpx.Client(base_url=upstream, timeout=30.0)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.http.close()


_HOP_HEADERS = ("content-length", "transfer-encoding", "connection", "date", "server")


class _Handler(BaseHTTPRequestHandler):
    server: RecordingProxy

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        ctl = self.server.control
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with ctl.lock:
            ctl.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
            if ctl.down:
                self.close_connection = True
                self.connection.close()  # as if nobody listened
                return
            fail = ctl.fail_count > 0 and ctl.fail_status is not None
            if fail:
                ctl.fail_count -= 1
        if fail:
            assert ctl.fail_status is not None
            payload = b'{"error":{"code":"busy","message":"try later"}}'
            self.send_response(ctl.fail_status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if ctl.retry_after is not None:
                self.send_header("Retry-After", ctl.retry_after)
            self.end_headers()
            self.wfile.write(payload)
            return
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in ("host", "content-length", "connection")
        }
        response = self.server.http.request(self.command, self.path, content=body, headers=headers)
        self.send_response(response.status_code)
        for k, v in response.headers.items():
            if k.lower() not in (
                "content-length",
                "transfer-encoding",
                "connection",
                "date",
                "server",
            ):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(response.content)))
        self.end_headers()
        self.wfile.write(response.content)

    do_GET = _handle
    do_POST = _handle


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)
