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
from serverkit import POLL
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
    *args: str,
    home: Path | None = None,
    timeout: float = 120.0,
    subprocess_: bool = False,
    stdin: str = "",
) -> CliResult:
    """``ncii-client ARGS``: in this process through ``client.cli.main`` (fast), or with
    ``subprocess_=True`` as a real command. Standard input is ``stdin`` (a pipe, never a
    terminal: there is no terminal to ask on)."""
    argv = [*args, *(["--home", str(home)] if home is not None else [])]
    if not subprocess_:
        return _run_inprocess(argv, stdin)
    env = {k: v for k, v in os.environ.items() if k != "NCII_CLIENT_HOME"}
    proc = subprocess.run(
        [sys.executable, "-m", "client.cli", *argv],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def _run_inprocess(argv: list[str], stdin_text: str = "") -> CliResult:
    from client.cli import main

    out, err = io.StringIO(), io.StringIO()
    stdin = sys.stdin
    try:
        sys.stdin = io.StringIO(stdin_text)  # not a terminal: confirmations need --yes
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


FLOOD_BYTES = 1 << 30  # what a lying hub sends: 1 GiB, generated lazily, 64 KiB at a time


@dataclass
class ProxyControl:
    """What the proxy does: forward (default), or answer ``status`` itself for the next
    ``count`` requests (e.g. 429 with Retry-After, 500), or drop connections (down).

    A lying hub: requests whose path starts with ``flood_path`` get ``flood_status`` and a body
    of ``flood`` kind: ``"endless"`` (1 GiB of JSON whitespace, no length, ended by closing),
    ``"declared"`` (the same with ``Content-Length: 1 GiB``) or ``"nested"`` (``[`` *
    ``nested_depth`` then ``]`` as many, a small but deeply nested JSON body). ``flood_sent``
    counts the bytes the proxy managed to write."""

    upstream: str
    down: bool = False
    fail_status: int | None = None
    fail_count: int = 0
    retry_after: str | None = None
    flood_path: str | None = None
    flood: str = "endless"
    flood_status: int = 200
    nested_depth: int = 30_000
    flood_sent: int = 0
    rewrite: Callable[[str, bytes], bytes] | None = None  # (path, upstream body) -> body sent
    lose_answer_path: str | None = None  # forward the next such request, then hang up unanswered
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RecordingProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), _Handler)
        self.control = ProxyControl(upstream)
        self.http = httpx.Client(base_url=upstream, timeout=30.0)
        self.thread = threading.Thread(target=self.serve_forever, kwargs=POLL, daemon=True)
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

    def _flood(self) -> None:
        ctl = self.server.control
        self.close_connection = True
        self.send_response(ctl.flood_status)
        self.send_header("Content-Type", "application/json")
        if ctl.flood == "nested":
            payload = b"[" * ctl.nested_depth + b"]" * ctl.nested_depth
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if ctl.flood == "declared":
            self.send_header("Content-Length", str(FLOOD_BYTES))
        self.end_headers()
        chunk = b" " * 65536
        try:
            for _ in range(FLOOD_BYTES // len(chunk)):
                self.wfile.write(chunk)
                ctl.flood_sent += len(chunk)
        except OSError:
            pass  # the client hung up: what it should do

    def _handle(self) -> None:
        ctl = self.server.control
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with ctl.lock:
            ctl.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
            flood = ctl.flood_path is not None and self.path.startswith(ctl.flood_path)
        if flood:
            self._flood()
            return
        with ctl.lock:
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
        with ctl.lock:
            lose = ctl.lose_answer_path is not None and self.path == ctl.lose_answer_path
            if lose:
                ctl.lose_answer_path = None
        if lose:  # the hub served it; its answer is lost on the way back
            self.close_connection = True
            self.connection.close()
            return
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
        content = response.content
        if ctl.rewrite is not None:
            content = ctl.rewrite(self.path, content)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = _handle
    do_POST = _handle


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)
