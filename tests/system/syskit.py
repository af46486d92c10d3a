"""Helpers for the system tests: partners registered with a real hub, a throttling proxy, a
fake hub that serves whatever a test wants, and small polling utilities.

Hub processes come from tests/hub/hubkit.py (``HubProcess``, ``Case``, ``verify_log`` ...).
Every wait polls with a deadline; nothing sleeps a fixed time to "let things settle".
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

from hubkit import HubProcess
from serverkit import POLL

PROJECT_ROOT = Path(__file__).resolve().parents[2]

FAST = ("--set", "batch_interval=0.05", "--set", "lock_retry_seconds=0.2")
FEED_FAST = (*FAST, "--set", "feed_max_age=0.1", "--set", "feed_batch_entries=8")
# The system tests send many requests from one address: rate limits are policy, not the
# subject here (the load test sets its own to provoke intended 429s).
NO_LIMITS = (
    "--set", "ip_rate=100000", "--set", "ip_burst=100000",
    "--set", "case_rate=100000", "--set", "case_burst=100000",
)  # fmt: skip


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``predicate`` every 20 ms until true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {what}")
        time.sleep(0.02)


def run_module(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``python -m ARGS`` from the project root, output captured (a real command line)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str]) -> None:
    """A refusal a person can act on: non-zero exit, a message, no Python traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    assert result.stderr.strip() or result.stdout.strip()


# -- partners -------------------------------------------------------------------------------


def new_partner(hub: HubProcess, directory: Path, name: str) -> Path:
    """Keys made by ``partner_sdk.init_partner``, registered in the hub's database."""
    from hub.db.engine import make_engine
    from hub.partners import PartnerRegistry, parse_partner_keys
    from partner_sdk import init_partner

    init_partner(directory, name)
    engine = make_engine(hub.database_url)
    try:
        keys = parse_partner_keys((directory / "partner-public.json").read_bytes())
        PartnerRegistry(engine).add(name, keys, int(time.time()))
    finally:
        engine.dispose()
    return directory


def sealed_through(hub: HubProcess) -> int:
    """The end of the last sealed feed batch (wrapped for every partner), from the database."""
    from sqlalchemy import func, select

    from hub.db.engine import make_engine
    from hub.db.models import FeedBatchRow, PartnerRow, table_of

    batches, partners = table_of(FeedBatchRow), table_of(PartnerRow)
    engine = make_engine(hub.database_url)
    try:
        with engine.connect() as conn:
            end = conn.execute(select(func.max(batches.c.end))).scalar() or 0
            pending = conn.execute(
                select(func.count()).select_from(partners).where(partners.c.rewrap.is_(True))
            ).scalar()
    finally:
        engine.dispose()
    return -1 if pending else int(end)


def store_rows(directory: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of a partner store that matters for matching, in a stable order."""
    conn = sqlite3.connect(f"file:{directory / 'store.sqlite3'}?mode=ro", uri=True)
    try:
        return {
            "sync_state": conn.execute(
                "SELECT origin, log_key, cursor, checkpoint_size, checkpoint_root FROM sync_state"
            ).fetchall(),
            "entries": conn.execute("SELECT * FROM entries ORDER BY log_index").fetchall(),
            "vpdq_frames": conn.execute(
                "SELECT * FROM vpdq_frames ORDER BY log_index, frame"
            ).fetchall(),
            "pending_redactions": conn.execute(
                "SELECT * FROM pending_redactions ORDER BY log_index"
            ).fetchall(),
        }
    finally:
        conn.close()


def store_cursor(directory: Path) -> int:
    """The partner store's committed cursor (0 if there is no store yet)."""
    path = directory / "store.sqlite3"
    if not path.exists():
        return 0
    with contextlib.suppress(sqlite3.Error):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            row = conn.execute("SELECT cursor FROM sync_state").fetchone()
            return int(row[0]) if row else 0
        finally:
            conn.close()
    return 0


# -- HTTP servers the tests control -----------------------------------------------------------


Handler = Callable[[str, str, bytes], tuple[int, dict[str, str], bytes]]


class ScriptedServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 whose every answer comes from ``handler(method, path, body)``:
    a fake hub serving garbage, or (with :func:`forwarding`) a slow proxy to a real one."""

    daemon_threads = True

    def __init__(self, handler: Handler) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.handler = handler
        self.requests: list[tuple[str, str]] = []
        self.thread = threading.Thread(target=self.serve_forever, kwargs=POLL, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _ScriptedHandler(BaseHTTPRequestHandler):
    server: ScriptedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append((self.command, self.path))
        status, out_headers, payload = self.server.handler(self.command, self.path, body)
        self.send_response(status)
        for k, v in out_headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(payload)

    do_GET = _handle
    do_POST = _handle


class HeaderProxy(ThreadingHTTPServer):
    """Forwards every request with its headers to ``upstream``, ``delay`` seconds late,
    optionally rewriting answers (``mutate``)."""

    daemon_threads = True

    def __init__(
        self,
        upstream: str,
        delay: float = 0.0,
        mutate: Callable[[str, int, bytes], tuple[int, bytes]] | None = None,
    ) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.delay = delay
        self.mutate = mutate  # (path, status, body) -> (status, body): a lying hub
        self.http = httpx.Client(base_url=upstream, timeout=60.0)
        self.thread = threading.Thread(target=self.serve_forever, kwargs=POLL, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.http.close()


class _ProxyHandler(BaseHTTPRequestHandler):
    server: HeaderProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        time.sleep(self.server.delay)
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in ("host", "content-length", "connection")
        }
        try:
            r = self.server.http.request(self.command, self.path, content=body, headers=headers)
        except httpx.HTTPError:
            self.close_connection = True
            return
        status, content = r.status_code, r.content
        if self.server.mutate is not None:
            status, content = self.server.mutate(self.path, status, content)
        self.send_response(status)
        for k, v in r.headers.items():
            if k.lower() not in (
                "content-length",
                "transfer-encoding",
                "connection",
                "date",
                "server",
                "content-encoding",
            ):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(content)

    do_GET = _handle
    do_POST = _handle
