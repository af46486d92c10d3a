"""Hub ingest, inclusion latency and proof serving, beside baselines measured in the same run.

Phases (each ``--seconds`` long), against uvicorn subprocesses on loopback, with the same client
(``--procs`` processes x ``--threads`` threads, httpx, one fresh signed envelope per request):

- baselines: raw Ed25519 verifications per second (pynacl, one core, in this process); a bare
  FastAPI app (POST that reads the body and answers 202; GET answering small JSON) under uvicorn;
- per database (SQLite file; PostgreSQL: a fresh database on 127.0.0.1:5432, dropped after):
  ingest with default settings (batch every 1 s) while a poller follows /v1/log, then the time
  from each sampled 202 to the first checkpoint that includes it (p50, p99); ingest again on a
  fresh hub with ``--no-sequencer`` (if the sequencer limited ingest, this would be faster);
  inclusion proofs by random index per second.

Rate limits are raised for the bench (``--set ip_rate=...``): they are policy, not capacity.
Run: .venv/bin/python bench/bench_hub.py [--quick | --smoke] [--json] [--seconds N] [--procs P]
[--threads T] [--no-postgres]  (``--smoke``: 0.5 s phases, SQLite only; ``--quick``: 3 s phases;
default 10 s; PostgreSQL figures show n/a when no server answers at NCII_TEST_POSTGRES.
``--json``: the rows of bench/README.md's convention as the last line of stdout.)
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import multiprocessing
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import nacl.signing  # noqa: E402
from _report import Rows, add_mode_flags, mode_of  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from starlette.responses import JSONResponse, Response  # noqa: E402

from crypto import envelope  # noqa: E402
from crypto.case import CaseSecret  # noqa: E402

ENVELOPE_TYPE = "application/vnd.ncii.envelope"
POSTGRES_ADMIN_URL = os.environ.get("NCII_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/test")
HASHES_PER_REQUEST = 10
REQUESTS_PER_CASE = 500  # a case holds at most 10,000 entries
UNLIMITED = [
    # Intake throughput, not the cost of creating cases (bench_puzzle.py measures that).
    "--set=puzzle=false",
    "--set=ip_rate=1000000",
    "--set=ip_burst=1000000",
    "--set=case_rate=1000000",
    "--set=case_burst=1000000",
    # Admission control stays on (its cost is part of every submission: a bucket row locked
    # per address and one hub-wide) with limits no run reaches: all load comes from 127.0.0.1.
    *(
        f"--set={name}=1000000000"
        for name in (
            "anon_hashes_per_hour",
            "anon_hashes_burst",
            "anon_cases_per_day",
            "anon_cases_burst",
            "global_hashes_per_hour",
            "global_hashes_burst",
            "global_cases_per_hour",
            "global_cases_burst",
        )
    ),
]
# Per mode: seconds per phase, client processes, threads per process, latency samples,
# requests profiled in process, PostgreSQL too.
MODES: dict[str, dict[str, Any]] = {
    "smoke": {
        "seconds": 0.5,
        "procs": 1,
        "threads": 2,
        "latency_samples": 20,
        "profiled": 20,
        "postgres": False,
    },
    "quick": {
        "seconds": 3.0,
        "procs": 2,
        "threads": 4,
        "latency_samples": 400,
        "profiled": 300,
        "postgres": True,
    },
    "full": {
        "seconds": 10.0,
        "procs": 2,
        "threads": 4,
        "latency_samples": 400,
        "profiled": 300,
        "postgres": True,
    },
}


# -- servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_app_main(port: int) -> None:
    """The baseline server: FastAPI + uvicorn doing nothing but read and answer."""
    import uvicorn

    app = FastAPI()

    @app.post("/v1/submissions")
    async def submit(request: Request) -> Response:
        body = await request.body()
        return Response(
            json.dumps({"v": 1, "received": len(body)}).encode(),
            status_code=202,
            media_type="application/json",
        )

    @app.get("/v1/proof/inclusion")
    async def proof(index: int = 0) -> JSONResponse:
        return JSONResponse({"log_index": index, "proof": []})

    @app.get("/v1/log")
    async def log() -> JSONResponse:
        return JSONResponse({"size": 0})

    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_server(cmd: list[str], port: int, log: Path) -> Server:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 60
    # One client for every probe (a new httpx client builds an SSL context: 25 ms of CPU,
    # taken from the server starting beside it).
    with httpx.Client(timeout=2, limits=httpx.Limits(max_keepalive_connections=0)) as probe:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{log.read_text(errors='replace')}")
            with contextlib.suppress(httpx.HTTPError):
                if probe.get(server.url + "/v1/log").status_code == 200:
                    return server
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"server not ready:\n{log.read_text(errors='replace')}")


def start_hub(work: Path, database_url: str | None, *extra: str) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "hub.cli", "serve", "--data", str(work / "data")]
    cmd += ["--port", str(port), "--log-level", "warning", *UNLIMITED, *extra]
    if database_url is not None:
        cmd += ["--database-url", database_url]
    return start_server(cmd, port, work / f"hub-{port}.log")


def postgres_reachable() -> bool:
    import psycopg

    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database (SQLAlchemy URL), dropped afterwards."""
    import psycopg

    name = "ncii_bench_" + secrets.token_hex(6)
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the client -----------------------------------------------------------------------------


def random_hashes(n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            out.append({"algorithm": "pdq", "hash": secrets.token_hex(32), "quality": 90})
        elif kind == 1:
            out.append({"algorithm": "md5", "hash": secrets.token_hex(16)})
        else:
            out.append({"algorithm": "sha256", "hash": secrets.token_hex(32)})
    return out


@dataclass
class Job:
    url: str
    mode: str  # "submit" or "proof"
    start: float  # wall clock (time.time) when to begin
    end: float
    threads: int
    size: int = 0  # proof mode: log size to draw indexes below


@dataclass
class Outcome:
    ok: int = 0
    failed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    acks: list[tuple[float, str]] = field(default_factory=list)  # (time of 202, a leaf hash)


def _client_thread(job: Job, out: Outcome, lock: threading.Lock) -> None:
    rng = random.Random()
    secret = CaseSecret.generate()
    used = 0
    with httpx.Client(base_url=job.url, timeout=60) as client:
        while time.time() < job.start:
            time.sleep(0.001)
        while True:
            if job.mode == "submit":
                if used == REQUESTS_PER_CASE:
                    secret, used = CaseSecret.generate(), 0
                used += 1
                body = json.dumps({"v": 1, "hashes": random_hashes(HASHES_PER_REQUEST)}).encode()
                raw = envelope.seal(
                    secret.signing_key(), "submission", body, int(time.time()), envelope.new_nonce()
                )
                try:
                    r = client.post(
                        "/v1/submissions", content=raw, headers={"Content-Type": ENVELOPE_TYPE}
                    )
                except httpx.HTTPError:
                    r = None
            else:
                index = rng.randrange(job.size)
                try:
                    r = client.get("/v1/proof/inclusion", params={"index": index, "size": job.size})
                except httpx.HTTPError:
                    r = None
            now = time.time()
            if now > job.end:
                return
            with lock:
                if r is None:
                    out.failed += 1
                    continue
                out.statuses[r.status_code] = out.statuses.get(r.status_code, 0) + 1
                if r.status_code in (200, 202):
                    out.ok += 1
                    if job.mode == "submit" and r.status_code == 202 and "entries" in r.text:
                        out.acks.append((now, r.json()["entries"][0]["leaf_hash"]))
                else:
                    out.failed += 1


def client_process(job: Job) -> Outcome:
    out = Outcome()
    lock = threading.Lock()
    threads = [
        threading.Thread(target=_client_thread, args=(job, out, lock)) for _ in range(job.threads)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def run_clients(
    pool: Any, url: str, mode: str, seconds: float, procs: int, threads: int, size: int = 0
) -> tuple[Outcome, float]:
    start = time.time() + min(0.5, seconds / 2)  # every client is connected and waiting
    job = Job(url, mode, start, start + seconds, threads, size)
    total = Outcome()
    for part in pool.map(client_process, [job] * procs):
        total.ok += part.ok
        total.failed += part.failed
        total.acks += part.acks
        for k, v in part.statuses.items():
            total.statuses[k] = total.statuses.get(k, 0) + v
    return total, seconds


# -- measurements ---------------------------------------------------------------------------


def ed25519_verify_rate(seconds: float) -> float:
    """Verifications per second of a submission-sized signed message, one core."""
    key = nacl.signing.SigningKey.generate()
    message = key.sign(os.urandom(900))
    verify = key.verify_key.verify
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(200):
            verify(message)
        count += 200
    return count / elapsed


class SizePoller:
    """Follows /v1/log every few milliseconds: (wall time, published size) samples."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self._stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    size = int(client.get("/v1/log").json()["size"])
                    self.samples.append((time.time(), size))
                time.sleep(0.01)

    def __enter__(self) -> SizePoller:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def gaps(self) -> list[float]:
        """Seconds between successive checkpoint changes (the sequencer's effective period)."""
        changes = [b[0] for a, b in itertools.pairwise(self.samples) if b[1] != a[1]]
        return [b - a for a, b in itertools.pairwise(changes)]

    def first_time_beyond(self, index: int) -> float | None:
        for t, size in self.samples:
            if size > index:
                return t
        return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class DbFigures:
    name: str
    req_per_s: float
    hashes_per_s: float
    nosq_req_per_s: float
    failed: int
    p50: float
    p99: float
    latency_samples: int
    drain: float
    proofs_per_s: float
    log_size: int
    period_p50: float
    period_max: float


def measure_database(
    name: str, database_url: str | None, args: argparse.Namespace, pool: Any
) -> DbFigures:
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp:
        work = Path(tmp)
        (work / "main").mkdir()
        hub = start_hub(work / "main", database_url)
        try:
            with SizePoller(hub.url) as poller:
                outcome, seconds = run_clients(
                    pool, hub.url, "submit", args.seconds, args.procs, args.threads
                )
                ended = time.time()
                accepted = outcome.ok * HASHES_PER_REQUEST
                with httpx.Client(base_url=hub.url, timeout=60) as client:
                    while int(client.get("/v1/log").json()["size"]) < accepted:
                        if time.time() - ended > 120:
                            raise RuntimeError("the log did not catch up within 120 s")
                        time.sleep(0.01)
                    drain = time.time() - ended
                    time.sleep(0.05)
            gaps = poller.gaps()
            latencies: list[float] = []
            rng = random.Random(1)
            sample = rng.sample(outcome.acks, min(len(outcome.acks), args.latency_samples))
            with httpx.Client(base_url=hub.url, timeout=60) as client:
                size = int(client.get("/v1/log").json()["size"])
                for acked_at, leaf in sample:
                    r = client.get("/v1/proof/inclusion", params={"leaf_hash": leaf})
                    r.raise_for_status()
                    included = poller.first_time_beyond(int(r.json()["log_index"]))
                    if included is not None:
                        latencies.append(max(0.0, included - acked_at))
            proofs, proof_seconds = run_clients(
                pool, hub.url, "proof", args.seconds, args.procs, args.threads, size=size
            )
        finally:
            hub.stop()
        (work / "nosq").mkdir()
        nosq_url = database_url
        with contextlib.ExitStack() as stack:
            if database_url is not None:
                nosq_url = stack.enter_context(postgres_database())
            hub = start_hub(work / "nosq", nosq_url, "--no-sequencer")
            try:
                nosq, _ = run_clients(
                    pool, hub.url, "submit", args.seconds, args.procs, args.threads
                )
            finally:
                hub.stop()
        if outcome.failed or nosq.failed or proofs.failed:
            print(
                f"  {name}: non-2xx answers: {outcome.statuses} {nosq.statuses} {proofs.statuses}"
            )
        return DbFigures(
            name=name,
            req_per_s=outcome.ok / seconds,
            hashes_per_s=accepted / seconds,
            nosq_req_per_s=nosq.ok / seconds,
            failed=outcome.failed + nosq.failed + proofs.failed,
            p50=percentile(latencies, 0.5) if latencies else float("nan"),
            p99=percentile(latencies, 0.99) if latencies else float("nan"),
            latency_samples=len(latencies),
            drain=drain,
            proofs_per_s=proofs.ok / proof_seconds,
            log_size=size,
            period_p50=percentile(gaps, 0.5) if gaps else float("nan"),
            period_max=max(gaps, default=float("nan")),
        )


def measure_bare(args: argparse.Namespace, pool: Any) -> tuple[float, float]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as tmp:
        server = start_server(
            [sys.executable, str(Path(__file__).resolve()), "--bare-server", str(port)],
            port,
            Path(tmp) / "bare.log",
        )
        try:
            posts, seconds = run_clients(
                pool, server.url, "submit", args.seconds, args.procs, args.threads
            )
            gets, _ = run_clients(
                pool, server.url, "proof", args.seconds, args.procs, args.threads, size=1000
            )
        finally:
            server.stop()
    return posts.ok / seconds, gets.ok / seconds


def server_breakdown(database_url: str | None, count: int = 300) -> tuple[float, dict[str, float]]:
    """Where one submission's time goes inside the hub (in this process, no HTTP, no
    concurrency): milliseconds per request and the share of each part, from cProfile."""
    import cProfile
    import pstats

    from hub import intake
    from hub.app import create_app
    from hub.settings import Settings

    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=database_url,
            sequencer=False,
            puzzle=False,
            case_rate=1e6,
            case_burst=1_000_000,
        )
        ctx = create_app(settings).state.hub
        secret = CaseSecret.generate()
        raws = [
            envelope.seal(
                secret.signing_key(),
                "submission",
                json.dumps({"v": 1, "hashes": random_hashes(HASHES_PER_REQUEST)}).encode(),
                int(time.time()),
                envelope.new_nonce(),
            )
            for _ in range(count)
        ]
        profile = cProfile.Profile()
        start = time.perf_counter()
        profile.enable()
        for raw in raws:
            intake.submit(ctx, raw)
        profile.disable()
        per_request = (time.perf_counter() - start) / count * 1e3
        ctx.storage.engine.dispose()
    parts: dict[str, float] = {}
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, own, _cum, _callers) in stats.items():
        where = f"{filename} {name}"
        if "commit" in name and "sqlite3" in name:
            part = "database commit (fsync)"
        elif "sqlite3" in where or "psycopg" in where:
            part = "database driver (statements, round trips)"
        elif "sqlalchemy" in where:
            part = "SQLAlchemy (Python SQL layer)"
        elif "crypto_sign_open" in where or "nacl/signing" in where:
            part = "Ed25519 verify"
        elif "aead" in where or "hmac" in where or "secretbox" in where:
            part = "sealing (XChaCha20, HMAC commitments)"
        elif "json" in where:
            part = "JSON"
        else:
            part = "other Python (hub, parsing, envelope)"
        parts[part] = parts.get(part, 0.0) + own
    total = sum(parts.values())
    return per_request, {k: v / total for k, v in sorted(parts.items(), key=lambda kv: -kv[1])}


# -- report ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_mode_flags(
        parser,
        smoke="0.5 s phases, 2 clients, SQLite only",
        quick="3 s phases, 8 clients",
        full="10 s phases, 8 clients",
    )
    parser.add_argument("--seconds", type=float, help="length of each phase")
    parser.add_argument("--procs", type=int, help="client processes")
    parser.add_argument("--threads", type=int, help="client threads per process")
    parser.add_argument("--latency-samples", type=int)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server is not None:
        bare_app_main(args.bare_server)
        return
    plan = MODES[mode_of(args)]
    for key in ("seconds", "procs", "threads", "latency_samples"):
        if getattr(args, key) is None:
            setattr(args, key, plan[key])
    wanted_postgres = plan["postgres"] and not args.no_postgres
    postgres = wanted_postgres
    if postgres and not postgres_reachable():
        print("PostgreSQL: no server answers at NCII_TEST_POSTGRES; its figures show n/a")
        postgres = False

    clients = args.procs * args.threads
    print(
        f"hub benchmark: signed submissions of {HASHES_PER_REQUEST} hashes, {clients} concurrent "
        f"clients ({args.procs} processes), loopback, {args.seconds:g} s per phase, "
        f"{os.cpu_count()} CPUs"
    )
    pool = multiprocessing.get_context("fork").Pool(args.procs)
    try:
        verify = ed25519_verify_rate(min(args.seconds, 3.0))
        bare_post, bare_get = measure_bare(args, pool)
        figures = [measure_database("SQLite", None, args, pool)]
        breakdowns = [("SQLite", server_breakdown(None, plan["profiled"]))]
        if postgres:
            with postgres_database() as url:
                figures.append(measure_database("PostgreSQL", url, args, pool))
            with postgres_database() as url:
                breakdowns.append(("PostgreSQL", server_breakdown(url, plan["profiled"])))
    finally:
        pool.close()
        pool.join()

    print()
    print(f"{'':38}{'per second':>14}  ratio")
    print(f"{'Ed25519 verify (pynacl, 1 core)':38}{verify:>14,.0f}  1.00 (baseline V)")
    print(f"{'bare FastAPI POST (same client)':38}{bare_post:>14,.0f}  1.00 (baseline B)")
    print(f"{'bare FastAPI GET (same client)':38}{bare_get:>14,.0f}  1.00 (baseline G)")
    for f in figures:
        print(f"-- {f.name}")
        print(
            f"{'  submissions accepted':38}{f.req_per_s:>14,.0f}  "
            f"{f.req_per_s / bare_post:.2f} B, {f.req_per_s / verify:.3f} V"
        )
        print(f"{'  hashes accepted':38}{f.hashes_per_s:>14,.0f}")
        print(
            f"{'  submissions, sequencer off':38}{f.nosq_req_per_s:>14,.0f}  "
            f"{f.nosq_req_per_s / bare_post:.2f} B (on/off {f.req_per_s / f.nosq_req_per_s:.2f})"
        )
        print(
            f"{'  inclusion proofs by index':38}{f.proofs_per_s:>14,.0f}  "
            f"{f.proofs_per_s / bare_get:.2f} G (log size {f.log_size:,})"
        )
        print(
            f"  202 -> checkpoint: p50 {f.p50:.2f} s, p99 {f.p99:.2f} s "
            f"({f.latency_samples} samples; batch interval 1 s); last entry {f.drain:.2f} s "
            "after the clients stopped"
        )
        print(
            f"  checkpoints every {f.period_p50:.2f} s (median), {f.period_max:.2f} s (longest) "
            "during ingest"
        )
    print()
    print("where a submission's time goes in the hub (one request at a time, cProfile):")
    for name, (ms, parts) in breakdowns:
        shares = ", ".join(
            f"{part} {share:.0%}"
            for part, share in parts.items()
            if share >= 0.01 or part == "Ed25519 verify"
        )
        print(f"  {name}: {ms:.1f} ms/request: {shares}")
    print()
    for f in figures:
        not_sequencer = f.req_per_s >= 0.85 * f.nosq_req_per_s and f.drain < 3.0
        print(
            f"aim {f.name}: ingest not limited by the sequencer "
            f"(on/off >= 0.85 and backlog drained < 3 s): {'met' if not_sequencer else 'NOT met'}; "
            f"inclusion p99 < 2 s: {'met' if f.p99 < 2.0 else 'NOT met'}"
        )
        if f.failed:
            print(f"  ({f.failed} requests failed or were refused)")
    if args.json:
        rows = Rows()
        baselines = (verify, bare_post, bare_get)
        for f in figures:
            add_rows(rows, f.name, f, *baselines)
        if wanted_postgres and not postgres:
            add_rows(rows, "PostgreSQL", None, *baselines)
        rows.print_json()


def add_rows(
    rows: Rows, name: str, f: DbFigures | None, verify: float, bare_post: float, bare_get: float
) -> None:
    """The figures of one database for --json (values n/a when it was not measured)."""

    def get(field: str) -> float | None:
        return None if f is None else float(getattr(f, field))

    req, nosq = get("req_per_s"), get("nosq_req_per_s")
    p50, p99, drain = get("p50"), get("p99"), get("drain")
    rows.add(
        f"{name}: hashes accepted",
        get("hashes_per_s"),
        "/s",
        "Ed25519 verify (pynacl, 1 core)",
        verify,
    )
    rows.add(f"{name}: submissions accepted", req, "/s", "bare FastAPI POST", bare_post)
    rows.add(
        f"{name}: submissions, sequencer on",
        req,
        "/s",
        "sequencer off",
        nosq,
        aim="on/off >= 0.85",
        met=req is not None and nosq is not None and req >= 0.85 * nosq,
    )
    rows.add(
        f"{name}: log caught up after clients stopped",
        drain,
        "s",
        aim="< 3 s",
        met=drain is not None and drain < 3.0,
    )
    rows.add(f"{name}: 202 -> checkpoint p50", p50, "s")
    rows.add(
        f"{name}: 202 -> checkpoint p99", p99, "s", aim="< 2 s", met=p99 is not None and p99 < 2.0
    )
    rows.add(
        f"{name}: inclusion proofs by index",
        get("proofs_per_s"),
        "/s",
        "bare FastAPI GET",
        bare_get,
    )


if __name__ == "__main__":
    main()
