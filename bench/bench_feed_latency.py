"""Benchmark: from a submission's 202 to "a partner running ``sync --follow`` can match it".

A real hub (``ncii-hub serve``, default sequencer and feed settings) and a real follower
(``ncii-partner sync --follow``) run as processes. One client submits single MD5 hashes at
random intervals; a watcher reads the partner's store (read-only, every 5 ms) and the hub's
checkpoint size (every 5 ms). Per entry:

- acceptance to checkpoint: the 202, to the first checkpoint whose size covers the entry's
  log index (the index is read from the partner's store);
- 202 to matchable: the 202, to the entry's row in the partner's store (what ``ncii-partner
  match`` and the match service read).

Same-run baseline: the round trip of one unauthenticated ``GET /v1/log`` to the same hub
(the floor of any request-driven step). Aims (issue 17): 202 to matchable p50 under 1 s and
p99 under 3 s; acceptance to checkpoint p99 under 1 s.

    .venv/bin/python bench/bench_feed_latency.py            # 300 submissions
    .venv/bin/python bench/bench_feed_latency.py --quick    # 60 submissions
    .venv/bin/python bench/bench_feed_latency.py --smoke    # 3 submissions (CI)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from _report import Rows, add_mode_flags, mode_of

from crypto import envelope
from crypto.case import CaseSecret
from hub.db.engine import make_engine
from hub.partners import PartnerKeys as HubPartnerKeys
from hub.partners import PartnerRegistry
from partner_sdk import init_partner
from partner_sdk.keys import load_keys as load_partner_keys

ROOT = Path(__file__).resolve().parents[1]
COUNTS = {"smoke": 3, "quick": 60, "full": 300}
ENVELOPE_TYPE = "application/vnd.ncii.envelope"
UNLIMITED = [
    "--set=ip_rate=1000000",
    "--set=ip_burst=1000000",
    "--set=case_rate=1000000",
    "--set=case_burst=1000000",
    # Latency is measured from the 202: no case puzzle or admission control in the way
    # (bench_puzzle and bench_hub measure those).
    "--set=puzzle=false",
    "--set=admission_control=false",
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def start_hub(work: Path, settings: list[str]) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    url = f"sqlite:///{work}/hub.sqlite3"
    cmd = [sys.executable, "-m", "hub.cli", "serve", "--data", str(work / "data")]
    cmd += ["--port", str(port), "--database-url", url, "--log-level", "warning", *UNLIMITED]
    cmd += [f"--set={x}" for x in settings]
    with open(work / "hub.log", "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    hub = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    # One client for every probe (a new httpx client builds an SSL context: 25 ms of CPU).
    with httpx.Client(timeout=2, limits=httpx.Limits(max_keepalive_connections=0)) as probe:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError((work / "hub.log").read_text(errors="replace"))
            with contextlib.suppress(httpx.HTTPError):
                r = probe.get(hub + "/v1/log")
                if r.status_code == 200:
                    return proc, hub, str(r.json()["verifier_key"])
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("hub not ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class Watcher(threading.Thread):
    """Polls the partner store for new rows and the hub for its checkpoint size."""

    def __init__(self, store: Path, hub: str) -> None:
        super().__init__(daemon=True)
        self.store, self.hub = store, hub
        self.seen: dict[bytes, tuple[float, int]] = {}  # md5 -> (time seen, log index)
        self.sizes: list[tuple[float, int]] = []  # (time, checkpoint size) when it grew
        self.halt = threading.Event()

    def run(self) -> None:
        after = -1
        conn: sqlite3.Connection | None = None
        with httpx.Client(base_url=self.hub, timeout=5) as client:
            while not self.halt.is_set():
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    size = int(client.get("/v1/log").json()["size"])
                    if not self.sizes or size > self.sizes[-1][1]:
                        self.sizes.append((time.time(), size))
                if conn is None and self.store.exists():
                    conn = sqlite3.connect(f"file:{self.store}?mode=ro", uri=True, timeout=5)
                if conn is not None:
                    with contextlib.suppress(sqlite3.OperationalError):
                        rows = conn.execute(
                            "SELECT log_index, hash FROM entries WHERE log_index > ? "
                            "AND algorithm = 'md5'",
                            (after,),
                        ).fetchall()
                        now = time.time()
                        for index, value in rows:
                            self.seen.setdefault(bytes(value), (now, int(index)))
                            after = max(after, int(index))
                time.sleep(0.005)
        if conn is not None:
            conn.close()


def checkpoint_time(sizes: list[tuple[float, int]], index: int) -> float | None:
    for t, size in sizes:
        if size > index:
            return t
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_mode_flags(ap, smoke="3 submissions", quick="60 submissions", full="300 submissions")
    ap.add_argument(
        "--hub-set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a hub setting, e.g. feed_max_age=5 --hub-set batch_interval=1 (the old defaults)",
    )
    args = ap.parse_args()
    count = COUNTS[mode_of(args)]
    rows = Rows()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        hub_proc, hub, log_key = start_hub(work, args.hub_set)
        follow: subprocess.Popen[bytes] | None = None
        try:
            partner_dir = work / "partner"
            init_partner(partner_dir, "bench")
            pk = load_partner_keys(partner_dir)
            engine = make_engine(f"sqlite:///{work}/hub.sqlite3")
            PartnerRegistry(engine).add(
                "bench", HubPartnerKeys("bench", pk.request_public, pk.feed_public), 0
            )
            engine.dispose()
            with open(work / "follow.log", "wb") as out:
                follow = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "partner_sdk.cli",
                        "sync",
                        "--follow",
                        "--dir",
                        str(partner_dir),
                        "--hub",
                        hub,
                        "--log-key",
                        log_key,
                        "--log-format",
                        "json",
                        # Smoke: short long polls. The hub's graceful stop waits (10 s) for a
                        # long poll whose follower has already exited; with --wait 30 that
                        # was 10 of the smoke run's 15 s. A poll answers the moment a batch
                        # is sealed whatever its wait, so the figures keep their meaning.
                        *(["--wait", "1"] if mode_of(args) == "smoke" else []),
                    ],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=out,
                )
            watcher = Watcher(partner_dir / "store.sqlite3", hub)
            watcher.start()
            # Baseline: one GET /v1/log round trip to the same hub.
            with httpx.Client(base_url=hub, timeout=30) as client:
                rtts = []
                for _ in range(50):
                    t = time.perf_counter()
                    client.get("/v1/log")
                    rtts.append(time.perf_counter() - t)
                rtt = percentile(rtts, 50)
                time.sleep(1.0)  # the follower's first (empty) sync
                secret = CaseSecret.generate()
                sent: dict[bytes, float] = {}
                rng = random.Random()
                for i in range(count):
                    if i and i % 20 == 0:
                        secret = CaseSecret.generate()
                    md5 = secrets.token_bytes(16)
                    body = json.dumps(
                        {"v": 1, "hashes": [{"algorithm": "md5", "hash": md5.hex()}]}
                    ).encode()
                    raw = envelope.seal(
                        secret.signing_key(),
                        "submission",
                        body,
                        int(time.time()),
                        envelope.new_nonce(),
                    )
                    r = client.post(
                        "/v1/submissions", content=raw, headers={"Content-Type": ENVELOPE_TYPE}
                    )
                    if r.status_code != 202:
                        raise RuntimeError(f"submission refused: {r.status_code} {r.text[:200]}")
                    sent[md5] = time.time()
                    time.sleep(rng.uniform(0.05, 0.6))
            deadline = time.monotonic() + 60
            while len(watcher.seen) < count and time.monotonic() < deadline:
                time.sleep(0.05)
            watcher.halt.set()
            watcher.join(10)
        finally:
            if follow is not None:
                follow.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    follow.wait(20)
                if follow.poll() is None:
                    follow.kill()
            stop(hub_proc)
    matchable = [watcher.seen[m][0] - t for m, t in sent.items() if m in watcher.seen]
    to_checkpoint = []
    for m, t in sent.items():
        if m in watcher.seen:
            c = checkpoint_time(watcher.sizes, watcher.seen[m][1])
            if c is not None:
                to_checkpoint.append(max(0.0, c - t))
    missing = count - len(matchable)
    p50, p99 = percentile(matchable, 50), percentile(matchable, 99)
    c50, c99 = percentile(to_checkpoint, 50), percentile(to_checkpoint, 99)
    print(f"baseline: GET /v1/log round trip p50 {rtt * 1000:.1f} ms")
    print(
        f"202 -> matchable at the partner ({len(matchable)} of {count}, {missing} missing): "
        f"p50 {p50:.3f} s, p99 {p99:.3f} s, max {max(matchable, default=float('nan')):.3f} s "
        f"(aim p50 < 1 s, p99 < 3 s)"
    )
    print(f"acceptance -> checkpoint: p50 {c50:.3f} s, p99 {c99:.3f} s (aim p99 < 1 s)")
    rows.add(
        "202 to matchable at a --follow partner, p50",
        p50,
        "s",
        "GET /v1/log round trip, p50",
        rtt,
        aim="< 1 s",
        met=missing == 0 and p50 < 1.0,
    )
    rows.add(
        "202 to matchable at a --follow partner, p99",
        p99,
        "s",
        "GET /v1/log round trip, p50",
        rtt,
        aim="< 3 s",
        met=missing == 0 and p99 < 3.0,
    )
    rows.add(
        "acceptance to checkpoint, p99",
        c99,
        "s",
        "GET /v1/log round trip, p50",
        rtt,
        aim="< 1 s",
        met=c99 < 1.0,
    )
    if args.json:
        rows.print_json()
    else:
        print(json.dumps({"done": True}))
    if missing:
        sys.exit(f"{missing} submissions never became matchable at the partner")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
