"""Helpers for auditor tests: processes, a static tile server, small logs built with crypto/."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from crypto.checkpoint import Checkpoint, sign_checkpoint
from crypto.keys import SignerKey, signer_key_from_seed
from crypto.merkle import MemoryHashStore, consistency_proof, leaf_hash
from crypto.tiles import append_tiles, parse_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

from hubkit import Case, HubProcess, mixed_hashes, post, ready_probe, wait_for_size
from serverkit import POLL

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AUDIT = [sys.executable, "-m", "auditor.cli"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_audit(
    *args: str, timeout: float = 60.0, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``ncii-audit`` as a subprocess (the real command line), capturing its output."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [*AUDIT, *args],
        capture_output=True,
        text=True,
        cwd=cwd or PROJECT_ROOT,
        timeout=timeout,
        env=env,
    )


@dataclass
class WitnessProcess:
    """``ncii-audit witness serve`` on a free port with its own key and state."""

    directory: Path
    name: str
    logs: list[str]
    state: Path | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    verifier_key: str = ""
    extra: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key_file(self) -> Path:
        return self.directory / "witness.key"

    def start(self, timeout: float = 20.0) -> WitnessProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.key_file.exists():
            from auditor.witness import create_key_file

            key = create_key_file(self.key_file, f"{self.name}.example")
            self.verifier_key = key.verifier.encode()
        state = self.state or self.directory / "state"
        args = [
            "witness",
            "serve",
            "--key",
            str(self.key_file),
            "--state",
            str(state),
            "--port",
            str(self.port),
        ]
        for log in self.logs:
            args += ["--log", log]
        args += self.extra
        log_path = self.directory / f"out-{secrets.token_hex(3)}.log"
        self.log_path = log_path
        with open(log_path, "wb") as out_f:
            self.proc = subprocess.Popen(
                [*AUDIT, *args], stdout=out_f, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT
            )
        deadline = time.monotonic() + timeout
        with ready_probe() as probe:  # one client for every probe (hubkit.ready_probe)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"witness exited: {log_path.read_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if probe.get(self.url + "/witness").status_code == 200:
                        return self
                time.sleep(0.05)
        raise RuntimeError(f"witness not ready: {log_path.read_text()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> WitnessProcess:
        self.kill()
        return self.start()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class StaticServer:
    """Serves a directory of tiles over HTTP from a thread (a forked or copied log)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs=POLL, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class HostileServer:
    """Serves a tile directory, but answers chosen paths with an endless or lying body.

    ``behaviours`` maps a URL path ("/checkpoint", "/tile/0/000") to "endless" (bytes forever,
    made lazily), "gzip-bomb" (an endless gzip stream of zeros, Content-Encoding: gzip) or
    "huge-length" (declares 1 GiB, sends nothing). ``sent`` counts body bytes written.
    """

    def __init__(self, root: Path | None, behaviours: dict[str, str]) -> None:
        server = self
        self.sent = 0
        self.behaviours = behaviours

        class Handler(_QuietHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                mode = server.behaviours.get(self.path)
                if mode is None:
                    super().do_GET()
                    return
                self.send_response(200)
                if mode == "huge-length":
                    self.send_header("Content-Length", str(1 << 30))
                    self.end_headers()
                    time.sleep(5)
                    return
                if mode == "gzip-bomb":
                    self.send_header("Content-Encoding", "gzip")
                self.end_headers()
                import zlib

                squash = zlib.compressobj(9, zlib.DEFLATED, 31)
                zeros = bytes(1 << 20)
                try:
                    while True:
                        if mode == "gzip-bomb":
                            chunk = squash.compress(zeros) + squash.flush(zlib.Z_SYNC_FLUSH)
                        else:
                            chunk = b"A" * 65536
                        self.wfile.write(chunk)
                        server.sent += len(chunk)
                except OSError:
                    return

        directory = str(root) if root is not None else "/nonexistent"
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=directory)
        )
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs=POLL, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class WebhookSink:
    """Collects JSON POSTed to it (the monitor's --webhook)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                sink.received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, kwargs=POLL, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/alert"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- logs built with crypto/ directly -------------------------------------------------------


def write_tiles(root: Path, tiles: dict[str, bytes]) -> None:
    for path, data in tiles.items():
        parse_path(path)
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def read_tile_from(root: Path) -> Any:
    def read(tile: Any) -> bytes:
        return (root / tile.path).read_bytes()

    return read


def extend_log(
    root: Path, old_size: int, entries: list[bytes], key: SignerKey, origin: str
) -> bytes:
    """Append ``entries`` to the tile directory ``root`` (a copy of a log) and sign a new
    checkpoint with ``key``; returns the checkpoint note (also written to root/checkpoint)."""
    update = append_tiles(old_size, read_tile_from(root), entries=entries)
    write_tiles(root, update.tiles)
    note = sign_checkpoint(Checkpoint(origin, update.state.size, update.root), [key])
    (root / "checkpoint").write_bytes(note)
    return note


@dataclass
class MemLog:
    """A log kept in memory: entries, hash store, key; checkpoints and proofs on demand."""

    origin: str = "log.example.org/test"
    seed: bytes = b"\x07" * 32
    store: MemoryHashStore = field(default_factory=MemoryHashStore)

    def __post_init__(self) -> None:
        self.key = signer_key_from_seed(self.origin, self.seed)

    @property
    def vkey(self) -> str:
        return self.key.verifier.encode()

    def grow(self, n: int, tag: str = "") -> None:
        start = self.store.size
        self.store.append([leaf_hash(f"{tag}entry {start + i}".encode()) for i in range(n)])

    def root(self, size: int | None = None) -> bytes:
        from crypto.merkle import tree_root

        return tree_root(self.store.size if size is None else size, self.store)

    def note(self, size: int | None = None) -> bytes:
        size = self.store.size if size is None else size
        return sign_checkpoint(Checkpoint(self.origin, size, self.root(size)), [self.key])

    def proof(self, old: int, new: int | None = None) -> list[bytes]:
        return consistency_proof(old, self.store.size if new is None else new, self.store)

    def fork(self, at: int) -> MemLog:
        """A copy that shares the first ``at`` leaves (same key): grow it differently."""
        twin = MemLog(self.origin, self.seed)
        twin.store.append(self.store.levels[0][:at])
        return twin


# -- the shared read-only scenario (built by the ``scenario`` fixture in conftest.py) ----


def grow_hub(hub: HubProcess, n: int) -> int:
    """Submit ``n`` hashes (one entry each) and wait until they are in a checkpoint."""
    with hub.client() as client:
        before = int(client.get("/v1/log").json()["size"])
        answer = post(client, "/v1/submissions", Case().submission(mixed_hashes(n)))
        assert answer.status_code == 202, answer.text
        size = wait_for_size(client, before + n)
        deadline = time.monotonic() + 20
        while client.get("/checkpoint").content.split(b"\n")[1] != str(size).encode():
            assert time.monotonic() < deadline, "/checkpoint lags behind /v1/log"
            time.sleep(0.02)
        return size


def checkpoint_file(hub: HubProcess, size: int, timeout: float = 20.0) -> bytes:
    """The hub's checkpoint file once it shows ``size`` (/v1/log may run ahead of the file)."""
    path = hub.data_dir / "tiles" / "checkpoint"
    deadline = time.monotonic() + timeout
    while True:
        note = path.read_bytes() if path.exists() else b""
        if note.split(b"\n")[1:2] == [str(size).encode()]:
            return note
        assert time.monotonic() < deadline, f"checkpoint file never reached size {size}"
        time.sleep(0.02)


@dataclass
class Scenario:
    hub: HubProcess
    origin: str
    vkey: str
    note3: bytes  # the hub's checkpoint at size 3
    snap3: Path  # a copy of its tiles at size 3
    note303: bytes  # the hub's checkpoint at size 303 (the current one)
    fork_same: StaticServer  # snap3 + 300 other entries: size 303, another root
    fork_longer: StaticServer  # snap3 + 400 other entries: size 403
    rollback: StaticServer  # serves snap3 (size 3) again
    hub_copy: Path  # a copy of the hub's tiles at 303
