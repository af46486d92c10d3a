"""Benchmark: full audit from local tiles, and witness add-checkpoint over real HTTP.

Each figure is printed beside a baseline measured in the same run, as a ratio:

- full audit entries/s (entry bundles and hash tiles read from a local directory, every level
  recomputed and compared) beside raw hashlib SHA-256 of the same leaves plus one node hash per
  leaf, the hashing floor of rebuilding a tree (about 2 hashes per entry);
- witness add-checkpoint requests/s over HTTP (uvicorn subprocess, keep-alive client, one
  verified log signature, consistency proof, cosignature and durable SQLite commit per request)
  beside the same calls made in process without HTTP.

    .venv/bin/python bench/bench_audit.py              # 1,000,000 entries, 300 requests
    .venv/bin/python bench/bench_audit.py --quick      # 100,000 entries, 100 requests
    .venv/bin/python bench/bench_audit.py --smoke      # 2,000 entries, 10 requests (CI)

``--json`` adds the rows of bench/README.md's convention as the last line of stdout.

Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from _report import Rows, add_mode_flags, mode_of

from auditor.fullaudit import full_audit
from auditor.source import DirSource
from auditor.trust import LogTrust
from auditor.witness import Witness, create_key_file, load_key_file
from auditor.witness_store import WitnessStore
from crypto.checkpoint import Checkpoint, sign_checkpoint
from crypto.keys import signer_key_from_seed
from crypto.merkle import MemoryHashStore, consistency_proof, leaf_hash, tree_root
from crypto.tiles import Tile, append_tiles
from crypto.witness_protocol import encode_add_checkpoint

ROOT = Path(__file__).resolve().parents[1]
ORIGIN = "bench.example.org/log"
SIZES = {"smoke": (2_000, 10), "quick": (100_000, 100), "full": (1_000_000, 300)}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_log(directory: Path, n: int) -> tuple[bytes, list[bytes]]:
    """Write a tile directory of ``n`` 34-byte entries; returns the checkpoint and entries."""
    key = signer_key_from_seed(ORIGIN, b"\x11" * 32)
    entries = [hashlib.sha256(i.to_bytes(8, "big")).digest() + b"\x00\x01" for i in range(n)]
    size, root = 0, b""

    def read(tile: object) -> bytes:
        assert isinstance(tile, Tile) or hasattr(tile, "path")
        return (directory / tile.path).read_bytes()  # type: ignore[attr-defined]

    step = 1 << 16
    for start in range(0, n, step):
        update = append_tiles(size, read, entries=entries[start : start + step])
        for path, data in update.tiles.items():
            target = directory / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        size, root = update.state.size, update.root
    note = sign_checkpoint(Checkpoint(ORIGIN, size, root), [key])
    (directory / "checkpoint").write_bytes(note)
    return note, entries


def bench_full(n: int, rows: Rows) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        log(f"writing a log of {n} entries ...")
        note, entries = build_log(directory, n)
        trust = LogTrust.from_strings(signer_key_from_seed(ORIGIN, b"\x11" * 32).verifier.encode())
        cp = trust.open(note)
        sha = hashlib.sha256
        best_raw = best_audit = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            leaves = [sha(b"\x00" + e).digest() for e in entries]
            it = iter(leaves)
            _ = [sha(b"\x01" + a + b).digest() for a, b in zip(it, it, strict=False)]
            _ = [sha(b"\x01" + a + a).digest() for a in leaves[: n // 2]]
            best_raw = min(best_raw, time.perf_counter() - t0)
            t0 = time.perf_counter()
            report = full_audit(DirSource(directory), cp)
            best_audit = min(best_audit, time.perf_counter() - t0)
            assert report.ok, report.problems
        print(f"full audit, {n} entries from local tiles (best of 3):")
        print(f"  raw SHA-256, 2 hashes/entry: {n / best_raw:12,.0f} entries/s")
        print(
            f"  ncii-audit full:             {n / best_audit:12,.0f} entries/s"
            f"   ratio {best_audit / best_raw:.2f}x the raw hashing time"
        )
        rows.add(
            f"full audit from local tiles, {n:,} entries",
            n / best_audit,
            "entries/s",
            "raw SHA-256, 2 hashes/entry",
            n / best_raw,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def witness_requests(count: int) -> tuple[str, list[bytes]]:
    key = signer_key_from_seed(ORIGIN, b"\x11" * 32)
    store = MemoryHashStore()
    store.append([leaf_hash(b"first")])
    bodies = [
        encode_add_checkpoint(
            0, [], sign_checkpoint(Checkpoint(ORIGIN, 1, tree_root(1, store)), [key])
        )
    ]
    for i in range(count):
        old = store.size
        store.append([leaf_hash(i.to_bytes(8, "big")) for _ in range(3)])
        note = sign_checkpoint(Checkpoint(ORIGIN, store.size, tree_root(store.size, store)), [key])
        bodies.append(encode_add_checkpoint(old, consistency_proof(old, store.size, store), note))
    return key.verifier.encode(), bodies


def bench_witness(count: int, rows: Rows) -> None:
    vkey, bodies = witness_requests(count)
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "w.key"
        create_key_file(key_file, "bench.witness")
        local = Witness(
            load_key_file(key_file),
            {
                ORIGIN: [
                    __import__("crypto.keys", fromlist=["parse_verifier_key"]).parse_verifier_key(
                        vkey
                    )
                ]
            },
            WitnessStore(Path(tmp) / "local.sqlite3"),
        )
        t0 = time.perf_counter()
        for raw in bodies:
            assert local.add_checkpoint(raw).status == 200
        in_process = time.perf_counter() - t0

        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "auditor.cli",
                "witness",
                "serve",
                "--key",
                str(key_file),
                "--log",
                vkey,
                "--state",
                str(Path(tmp) / "http.sqlite3"),
                "--port",
                str(port),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/witness").status_code == 200:
                        break
                time.sleep(0.05)
            with httpx.Client(base_url=url) as client:
                t0 = time.perf_counter()
                for raw in bodies:
                    assert client.post("/add-checkpoint", content=raw).status_code == 200
                over_http = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(10)
    n = len(bodies)
    print(f"witness add-checkpoint, {n} sequential requests (durable SQLite commit each):")
    print(f"  in process (no HTTP):        {n / in_process:12,.0f} requests/s")
    print(
        f"  over HTTP (uvicorn):         {n / over_http:12,.0f} requests/s"
        f"   ratio {over_http / in_process:.2f}x the in-process time"
    )
    rows.add(
        "witness add-checkpoint over HTTP (durable)",
        n / over_http,
        "requests/s",
        "the same calls in process",
        n / in_process,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_mode_flags(
        parser,
        smoke="2,000 entries, 10 requests",
        quick="100,000 entries, 100 requests",
        full="1,000,000 entries, 300 requests",
    )
    args = parser.parse_args()
    entries, requests = SIZES[mode_of(args)]
    rows = Rows()
    bench_full(entries, rows)
    bench_witness(requests, rows)
    if args.json:
        rows.print_json()


if __name__ == "__main__":
    main()
