"""Helpers for hub tests over real HTTP: a hub subprocess, signed requests, log verification.

Used by tests/hub/conftest.py fixtures and importable by any test in tests/hub
(``from hubkit import ...``). See tests/hub/README.md.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from crypto import envelope
from crypto.case import CaseSecret
from crypto.checkpoint import Checkpoint, open_checkpoint
from crypto.keys import VerifierKey, parse_verifier_key
from crypto.merkle import NodeId, leaf_hash, root_from_leaf_hashes
from crypto.tiles import (
    EntryBundle,
    Tile,
    TileHashReader,
    decode_entry_bundle,
    decode_tile,
    entry_bundles_for_size,
    tiles_for_size,
)

ENVELOPE_TYPE = "application/vnd.ncii.envelope"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


# httpx's default TLS settings, built once: a client made without it
# builds its own SSL context, about 25 ms of CPU, which polling loops paid on every probe.
TLS = httpx.create_ssl_context()


def ready_probe() -> httpx.Client:
    """A client for readiness probes of a process starting on loopback (no keep-alive: a
    probe answered by the process's previous incarnation must not be reused)."""
    return httpx.Client(timeout=1.0, verify=TLS, limits=httpx.Limits(max_keepalive_connections=0))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HubProcess:
    """``ncii-hub serve`` in a subprocess on a free port; start, SIGKILL, SIGTERM, restart."""

    data_dir: Path
    database_url: str
    extra_args: Sequence[str] = ()
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "hub.cli",
            "serve",
            "--data",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
            # Tests of other parts send thousands of hashes and many cases from one loopback
            # address; admission control (tests/hub/test_admission.py turns it back on with a
            # later --set) would hold them for review.
            "--set",
            "admission_control=false",
            # Test hubs ask no case puzzle unless a test says so (``--set puzzle=true``; the
            # last --set wins): most tests post envelopes for fresh cases by hand.
            "--set",
            "puzzle=false",
            *self.extra_args,
        ]

    def start(self, timeout: float = 30.0) -> HubProcess:
        self.log_path = self.data_dir.parent / f"hub-{self.port}-{secrets.token_hex(3)}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("DATABASE_URL", None)
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, env=env
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        # One client for every probe: each new httpx client builds an SSL context (about
        # 25 ms of CPU), and a probe every 50 ms took 0.4-0.6 CPU-s from the starting hub.
        with ready_probe() as probe:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"hub exited with {self.proc.returncode}:\n{self.output()}")
                with contextlib.suppress(httpx.HTTPError):
                    if probe.get(self.url + "/v1/log").status_code == 200:
                        return
                time.sleep(0.05)
        raise RuntimeError(f"hub not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait for the clean exit; returns the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def restart(self) -> HubProcess:
        self.kill()
        return self.start()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, verify=TLS)


class SequenceProcess:
    """``ncii-hub sequence`` in a subprocess (fast rounds and lock retries), its output in a
    file: the log's work beside ``serve --no-sequencer`` hubs of the same data directory."""

    def __init__(self, data_dir: Path, database_url: str, *extra: str) -> None:
        self.log = data_dir.parent / f"sequence-{time.monotonic_ns()}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("DATABASE_URL", None)
        command = [sys.executable, "-m", "hub.cli", "sequence", "--data", str(data_dir)]
        command += ["--database-url", database_url, "--set", "batch_interval=0.05"]
        command += ["--set", "lock_retry_seconds=0.2", *extra]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, env=env
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output()}"
            time.sleep(0.05)

    def stop(self, signum: int) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


HubFactory = Callable[..., HubProcess]
"""What the ``hub_factory`` fixtures (tests/hub, tests/system) hand to a test."""


# -- signed requests ------------------------------------------------------------------------


def random_pdq(quality: int = 90) -> dict[str, Any]:
    return {"algorithm": "pdq", "hash": secrets.token_hex(32), "quality": quality}


def random_md5() -> dict[str, Any]:
    return {"algorithm": "md5", "hash": secrets.token_hex(16)}


def random_sha256() -> dict[str, Any]:
    return {"algorithm": "sha256", "hash": secrets.token_hex(32)}


def random_vpdq(frames: int = 3, quality: int = 100) -> dict[str, Any]:
    return {
        "algorithm": "vpdq",
        "frames": [
            {"frame": i, "quality": quality, "hash": secrets.token_hex(32), "timestamp": i * 0.5}
            for i in range(frames)
        ],
    }


def mixed_hashes(n: int) -> list[dict[str, Any]]:
    makers = [random_pdq, random_md5, random_sha256, random_vpdq]
    return [makers[i % 4]() for i in range(n)]


def canonical(value: object) -> bytes:
    import json

    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


@dataclass
class Case:
    """A case key (from a fresh CaseSecret) that signs envelopes for the hub."""

    secret: CaseSecret = field(default_factory=CaseSecret.generate)

    @property
    def case_id(self) -> str:
        return self.secret.case_id()

    def seal(
        self,
        purpose: str,
        body: object,
        *,
        timestamp: int | None = None,
        nonce: bytes | None = None,
    ) -> bytes:
        raw = body if isinstance(body, bytes) else canonical(body)
        return envelope.seal(
            self.secret.signing_key(),
            purpose,
            raw,
            int(time.time()) if timestamp is None else timestamp,
            envelope.new_nonce() if nonce is None else nonce,
        )

    def submission(self, hashes: list[dict[str, Any]], **kw: Any) -> bytes:
        return self.seal("submission", {"v": 1, "hashes": hashes}, **kw)

    def status_query(self, **kw: Any) -> bytes:
        return self.seal("status-query", {"v": 1}, **kw)

    def withdrawal(self, entries: list[str] | None = None, **kw: Any) -> bytes:
        body: dict[str, Any] = {"v": 1}
        if entries is None:
            body["all"] = True
        else:
            body["entries"] = entries
        return self.seal("withdrawal", body, **kw)


def post(client: httpx.Client, path: str, raw: bytes) -> httpx.Response:
    return client.post(path, content=raw, headers={"Content-Type": ENVELOPE_TYPE})


# -- the log --------------------------------------------------------------------------------


def log_info(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/v1/log")
    response.raise_for_status()
    info: dict[str, Any] = response.json()
    return info


def wait_for_size(client: httpx.Client, size: int, timeout: float = 20.0) -> int:
    """Poll /v1/log until the published size reaches ``size``; returns the size seen."""
    deadline = time.monotonic() + timeout
    while True:
        seen = int(log_info(client)["size"])
        if seen >= size:
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"log stuck at {seen} < {size}")
        time.sleep(0.05)


def settled_size(client: httpx.Client, timeout: float = 30.0) -> int:
    """The published log size once the hub has sequenced and published everything it accepted
    so far (its loopback /metrics: nothing pending, published = sequenced): any later growth
    comes from what the caller sends next. Instead of sleeping "long enough"."""
    wanted = ("ncii_hub_pending_entries", "ncii_hub_log_size", "ncii_hub_log_published_size")
    deadline = time.monotonic() + timeout
    while True:
        lines = client.get("/metrics").text.splitlines()
        gauges = {n: float(v) for n, _, v in (x.partition(" ") for x in lines) if n in wanted}
        size = int(log_info(client)["size"])
        pending, sequenced, published = (gauges.get(n) for n in wanted)
        if pending == 0 and sequenced == published == size:
            return size
        if time.monotonic() > deadline:
            raise AssertionError(f"the hub did not settle in {timeout} s: {gauges}, size {size}")
        time.sleep(0.05)


@dataclass
class VerifiedLog:
    checkpoint: Checkpoint
    note: bytes
    leaves: list[bytes]  # leaf data, index order


def verifier_of(client: httpx.Client) -> tuple[VerifierKey, str]:
    info = log_info(client)
    return parse_verifier_key(info["verifier_key"]), str(info["origin"])


def verify_log(client: httpx.Client, key: VerifierKey, origin: str) -> VerifiedLog:
    """Fetch the checkpoint, verify its signature, fetch every tile and entry bundle, and
    check that they all rebuild the checkpoint's root (raises on any mismatch)."""
    note = client.get("/checkpoint").content
    cp = open_checkpoint(note, [key], origin=origin).checkpoint
    fetched: dict[str, bytes] = {}

    def fetch(tile: Tile | EntryBundle) -> bytes:
        if tile.path not in fetched:
            response = client.get("/" + tile.path)
            assert response.status_code == 200, (tile.path, response.status_code)
            assert response.headers["content-type"] == "application/octet-stream"
            fetched[tile.path] = response.content
        return fetched[tile.path]

    leaves: list[bytes] = []
    for bundle in entry_bundles_for_size(cp.size):
        leaves.extend(decode_entry_bundle(fetch(bundle), bundle.width))
    assert len(leaves) == cp.size
    hashes = [leaf_hash(x) for x in leaves]
    assert root_from_leaf_hashes(hashes) == cp.root_hash
    reader = TileHashReader(cp.size, cp.root_hash, fetch)
    assert reader.state().root() == cp.root_hash
    for tile in tiles_for_size(cp.size):
        data = decode_tile(tile, fetch(tile))
        if tile.level == 0:
            start = tile.index * 256
            assert data == hashes[start : start + tile.width]
        if tile.is_full:  # authenticates the tile against the tile above it
            reader.read_hashes([NodeId(8 * tile.level + 7, 2 * tile.index)])
    return VerifiedLog(cp, note, leaves)


# -- the person's page ----------------------------------------------------------------------


def web_with_log_key_meta(dest: Path) -> Path:
    """A copy of web/ at ``dest`` whose index.html holds the empty ``ncii-log-key`` meta that
    the hub and ``ncii-client ui`` fill (added if web/index.html does not have it yet)."""
    import shutil

    shutil.copytree(PROJECT_ROOT / "web", dest, ignore=shutil.ignore_patterns("node_modules"))
    index = (dest / "index.html").read_bytes()
    if b'name="ncii-log-key"' not in index:
        meta = b'<meta name="ncii-log-key" content="">\n'
        (dest / "index.html").write_bytes(index.replace(b"<title>", meta + b"<title>", 1))
    return dest


@contextlib.contextmanager
def hub_database(database_url: str, data_dir: Path) -> Iterator[tuple[Any, Any, Any]]:
    """(keys, engine, storage) of a new hub in ``data_dir`` on ``database_url`` (schema
    created), all closed on exit: for tests of storage without an app."""
    from crypto.merkle import EMPTY_ROOT
    from hub.db.engine import create_schema, make_engine
    from hub.keystore import load_keys
    from hub.sequencer import sign_tree_head
    from hub.storage import SqlStorage

    keys = load_keys(data_dir, "test.example/log")
    engine = make_engine(database_url)
    create_schema(engine, sign_tree_head(keys, 0, EMPTY_ROOT))
    storage = SqlStorage(engine)
    try:
        yield keys, engine, storage
    finally:
        storage.close()
        engine.dispose()
        keys.vault.close()
