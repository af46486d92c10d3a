"""Hub ingest under a compiled load generator (wrk), beside a bare FastAPI POST in the same run.

Why wrk: at these rates a Python client is itself the bottleneck (bench_hub.py's figures are
bounded by its own client). Envelopes are signed beforehand (10 hashes each, a new case per
envelope, every one distinct) and written to a file; a Lua script gives each wrk thread its own
slice and never sends one twice, so every request is a new submission (a retry would be answered
from the replay record, which is cheaper). The hub runs with ``puzzle=false`` (a new case per
request would otherwise need a solved puzzle) and ``admission_control=false`` (all load comes
from one address) and rate limits raised: they are policy, not capacity.

Phases per database (SQLite file; PostgreSQL: a fresh database on 127.0.0.1:5432):
1. full load: wrk with ``--connections`` connections for ``--seconds``: submissions/s, hashes/s;
2. half load: wrk paced (each connection waits between requests) at half the rate of phase 1:
   202 latency p50/p99, and meanwhile a probe posts one submission every 50 ms and a separate
   poller process follows /v1/log: the time from each probe's 202 to the first checkpoint that
   covers it (p50, p99; upper bounds, with lower bounds from the poller's send times); the
   probe goes on for 2 s after the load (``--smoke``: it stops with the load, and the bench
   waits only until a checkpoint covers its last submission).
The baseline is a bare FastAPI app under the hub's own uvicorn settings (h11 with the hub's
connection guard), driven by the same wrk and envelopes.

With ``--split`` each database is measured a second time with the hub as two processes: ``serve
--no-sequencer`` answering HTTP beside ``ncii-hub sequence`` (rounds, checkpoints, feed).

Run: .venv/bin/python bench/bench_ingest.py [--quick | --smoke] [--json] [--seconds N]
[--connections C] [--no-postgres] [--split] [--set NAME=VALUE ...] (extra hub settings)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from _report import Rows, add_mode_flags, mode_of  # noqa: E402
from bench_hub import (  # noqa: E402
    ENVELOPE_TYPE,
    HASHES_PER_REQUEST,
    free_port,
    percentile,
    postgres_database,
    postgres_reachable,
    random_hashes,
    start_server,
)
from fastapi import FastAPI, Request  # noqa: E402
from starlette.responses import JSONResponse, Response  # noqa: E402

from crypto import envelope  # noqa: E402
from crypto.case import CaseSecret  # noqa: E402

HUB_SETTINGS = [
    "--set=puzzle=false",
    "--set=admission_control=false",
    "--set=ip_rate=1000000",
    "--set=ip_burst=1000000",
    "--set=case_rate=1000000",
    "--set=case_burst=1000000",
]
MODES: dict[str, dict[str, Any]] = {
    "smoke": {"seconds": 1.0, "connections": 8, "envelopes": 3_000, "postgres": False},
    "quick": {"seconds": 5.0, "connections": 32, "envelopes": 20_000, "postgres": True},
    "full": {"seconds": 10.0, "connections": 64, "envelopes": 40_000, "postgres": True},
}
WRK_THREADS = 2
_used = [0]  # envelopes sent to the current hub so far (each phase continues after them)

LUA = r"""
-- Each wrk thread sends its own slice of pre-signed envelopes, each once.
local path = os.getenv("NCII_ENVELOPES")
local threads = {}
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  local nthreads = tonumber(os.getenv("NCII_WRK_THREADS"))
  local first = tonumber(os.getenv("NCII_FIRST"))  -- envelopes used by earlier phases
  bodies = {}
  local pos, i = 1, 0
  while pos <= #data do
    local a, b, c, d = string.byte(data, pos, pos + 3)
    local n = ((a * 256 + b) * 256 + c) * 256 + d
    if i >= first and i % nthreads == tid then
      bodies[#bodies + 1] = string.sub(data, pos + 4, pos + 3 + n)
    end
    pos = pos + 4 + n
    i = i + 1
  end
  nextone = 1
  exhausted = 0
  pace = tonumber(os.getenv("NCII_PACE_MS") or "0")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/vnd.ncii.envelope"
end
function request()
  local body = bodies[nextone]
  if body == nil and os.getenv("NCII_WRAP") == "1" then
    nextone = 1  -- the bare server: any body will do, repeats included
    body = bodies[1]
  end
  if body == nil then
    exhausted = exhausted + 1
    body = bodies[1]  -- out of envelopes: counted, and the run is refused by the bench
  else
    nextone = nextone + 1
  end
  return wrk.format(nil, "/v1/submissions", nil, body)
end
if tonumber(os.getenv("NCII_PACE_MS") or "0") > 0 then
  function delay()
    return pace
  end
end
function done(summary, latency, requests)
  local ex = 0
  for _, t in ipairs(threads) do ex = ex + (t:get("exhausted") or 0) end
  io.write(string.format(
    "NCII {\"requests\":%d,\"non2xx\":%d,\"errors\":%d,\"seconds\":%f,"
      .. "\"p50\":%f,\"p99\":%f,\"exhausted\":%d}\n",
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, ex))
end
"""


@dataclass
class Load:
    rate: float  # 2xx answers per second
    requests: int
    non2xx: int
    errors: int
    p50_ms: float
    p99_ms: float
    cpu_ms: float = float("nan")  # server CPU per request (every thread), ms
    db_cpu_ms: float = float("nan")  # PostgreSQL server's CPU per request, ms (postgres_cpu)
    cpu_parts_ms: tuple[float, ...] = ()  # cpu_ms per server process, in the order given


def cpu_of(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of these processes so far (every thread), from /proc."""
    out: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two readings (a process that appeared meanwhile: all of its CPU)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def postgres_cpu(database_url: str | None) -> float | None:
    """CPU seconds used so far by the PostgreSQL server: every live ``postgres`` process, plus
    what the postmaster has collected from children that exited. Why the whole server, not the
    bench database's backends: a backend that closes during the run (a pool's overflow
    connection) would take its CPU with it. Other databases' work counts too: run it on an
    otherwise idle server."""
    if database_url is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            head, rest = (proc / "stat").read_text().rsplit(")", 1)
            if not head.endswith("(postgres"):
                continue
            fields = rest.split()
            total += (int(fields[11]) + int(fields[12])) / tick
            if (
                not Path(f"/proc/{fields[1]}/stat")
                .read_text()
                .rsplit(")", 1)[0]
                .endswith("(postgres")
            ):  # the postmaster: its reaped children's CPU
                total += (int(fields[13]) + int(fields[14])) / tick
    return total


def make_envelopes(path: Path, count: int) -> None:
    """``count`` distinct signed submissions, each of a new case, length-prefixed."""
    now = int(time.time())
    with open(path, "wb") as out:
        for _ in range(count):
            body = json.dumps({"v": 1, "hashes": random_hashes(HASHES_PER_REQUEST)}).encode()
            raw = envelope.seal(
                CaseSecret.generate().signing_key(), "submission", body, now, envelope.new_nonce()
            )
            out.write(len(raw).to_bytes(4, "big") + raw)


def run_wrk(
    url: str,
    envelopes: Path,
    lua: Path,
    seconds: float,
    connections: int,
    pace_ms: float = 0,
    server_pids: list[int] | None = None,
    database_url: str | None = None,
    wrap: bool = False,
) -> Load:
    env = {
        **os.environ,
        "NCII_ENVELOPES": str(envelopes),
        "NCII_WRK_THREADS": str(WRK_THREADS),
        "NCII_PACE_MS": str(int(pace_ms)),
        "NCII_FIRST": str(_used[0]),
        "NCII_WRAP": "1" if wrap else "0",
    }
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    cmd += ["--timeout", "10s"]
    cmd += ["-s", str(lua), url]
    server = server_pids or []
    before = cpu_of(server)
    db_before = postgres_cpu(database_url)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    after = cpu_of(server)
    cpu = cpu_used(before, after)
    db_after = postgres_cpu(database_url)
    db_cpu = float("nan") if db_before is None or db_after is None else db_after - db_before
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{done.stdout}\n{done.stderr}")
    found = re.search(r"^NCII (\{.*\})$", done.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    s = json.loads(found.group(1))
    if s["exhausted"]:
        raise RuntimeError("wrk ran out of distinct envelopes; raise --envelopes")
    _used[0] += s["requests"] + WRK_THREADS * connections  # + those in flight at the end
    ok = s["requests"] - s["non2xx"]
    per = 1e3 / max(1, s["requests"])
    return Load(
        ok / s["seconds"],
        s["requests"],
        s["non2xx"],
        s["errors"],
        s["p50"],
        s["p99"],
        cpu * per if server else float("nan"),
        db_cpu * per if database_url else float("nan"),
        tuple((after.get(p, 0.0) - before.get(p, 0.0)) * per for p in server),
    )


class Probe:
    """One fresh submission every 50 ms while the load runs: (time of its 202, leaf hash)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acks: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self._stop.wait(0.05):
                body = json.dumps({"v": 1, "hashes": random_hashes(HASHES_PER_REQUEST)}).encode()
                raw = envelope.seal(
                    CaseSecret.generate().signing_key(),
                    "submission",
                    body,
                    int(time.time()),
                    envelope.new_nonce(),
                )
                with contextlib.suppress(httpx.HTTPError):
                    r = client.post(
                        "/v1/submissions", content=raw, headers={"Content-Type": ENVELOPE_TYPE}
                    )
                    if r.status_code == 202:
                        self.acks.append((time.time(), r.json()["entries"][0]["leaf_hash"]))

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


class CheckpointPoller:
    """A separate process (its own interpreter and event loop, so nothing in the bench delays
    it) that asks /v1/log for the published size every 20 ms and records, per answer, when
    the request was sent, when the answer came and the size: a checkpoint covering index i
    was published after the send time of the last answer below i and before the arrival of
    the first answer beyond it."""

    def __init__(self, url: str, out: Path) -> None:
        self.url = url
        self.out = out
        self.samples: list[tuple[float, float, int]] = []  # (sent, received, size)
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> CheckpointPoller:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--poll", self.url, str(self.out)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.close()  # the poller ends when its stdin closes
        self._proc.wait(timeout=30)
        for line in self.out.read_text().splitlines():
            sent, received, size = line.split()
            self.samples.append((float(sent), float(received), int(size)))

    def covered(self, index: int) -> tuple[float, float] | None:
        """(earliest, latest) time the first checkpoint covering ``index`` was published."""
        after = float("-inf")
        for sent, received, size in self.samples:
            if size > index:
                return after, received
            after = sent
        return None


def poller_main(url: str, out: Path) -> None:
    """The poller process: samples until its stdin closes."""
    import select

    with httpx.Client(base_url=url, timeout=60) as client, open(out, "w") as sink:
        while not select.select([sys.stdin], [], [], 0.02)[0]:
            sent = time.time()
            with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                size = int(client.get("/v1/log").json()["size"])
                sink.write(f"{sent:.6f} {time.time():.6f} {size}\n")


def wait_covered(url: str, probe: Probe, timeout: float = 30.0) -> None:
    """Until a published checkpoint covers the probe's last submission, and a little longer
    for the poller (it asks every 20 ms) to see it."""
    if not probe.acks:
        return
    leaf = probe.acks[-1][1]
    deadline = time.time() + timeout
    with httpx.Client(base_url=url, timeout=60) as client:
        while time.time() < deadline:
            # 200 only once the leaf is below the published size (hub/logapi.py)
            if client.get("/v1/proof/inclusion", params={"leaf_hash": leaf}).status_code == 200:
                break
            time.sleep(0.02)
    time.sleep(0.2)


def inclusion_latencies(
    url: str, probe: Probe, poller: CheckpointPoller, bounds: list[float]
) -> list[float]:
    """Seconds from each probe's 202 to the arrival of the first answer that showed it
    covered (an upper bound); ``bounds`` gets the lower bounds (see CheckpointPoller)."""
    out: list[float] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        deadline = time.time() + 30
        for acked_at, leaf in probe.acks:
            while True:
                r = client.get("/v1/proof/inclusion", params={"leaf_hash": leaf})
                if r.status_code == 200 or time.time() > deadline:
                    break
                time.sleep(0.05)
            if r.status_code != 200:
                continue
            covered = poller.covered(int(r.json()["log_index"]))
            if covered is not None:
                out.append(max(0.0, covered[1] - acked_at))
                bounds.append(max(0.0, covered[0] - acked_at))
    return out


@dataclass
class Figures:
    full: Load
    half: Load
    checkpoint_p50: float
    checkpoint_p99: float
    probes: int
    low_p50: float = float("nan")  # the same from the lower bounds (CheckpointPoller)
    low_p99: float = float("nan")


def measure(
    server: Any,
    pids: list[int],
    envelopes: Path,
    lua: Path,
    args: argparse.Namespace,
    follow: bool,
    database_url: str | None = None,
) -> Figures:
    url = server.url
    _used[0] = 0  # a new hub: every envelope is new to it
    full = run_wrk(url, envelopes, lua, args.seconds, args.connections, 0, pids, database_url)
    # Half load: each connection waits so that all together send about half the full rate.
    pace = max(1.0, 1e3 * args.connections / (full.rate / 2) - full.p50_ms)
    if not follow:
        half = run_wrk(url, envelopes, lua, args.seconds, args.connections, pace)
        return Figures(full, half, float("nan"), float("nan"), 0)
    poller = CheckpointPoller(url, Path(tempfile.mkstemp(prefix="ncii-poll-")[1]))
    with poller:
        with Probe(url) as probe:
            half = run_wrk(url, envelopes, lua, args.seconds, args.connections, pace)
            if not args.smoke:
                time.sleep(2.0)  # catch checkpoints after the load stopped
        if args.smoke:  # no probes after the load: wait only for the checkpoint of the last
            wait_covered(url, probe)
    poller.out.unlink()
    lows: list[float] = []
    lat = inclusion_latencies(url, probe, poller, lows)
    nan = float("nan")
    return Figures(
        full,
        half,
        percentile(lat, 0.5) if lat else nan,
        percentile(lat, 0.99) if lat else nan,
        len(lat),
        percentile(lows, 0.5) if lows else nan,
        percentile(lows, 0.99) if lows else nan,
    )


def bare_server_main(port: int) -> None:
    """The baseline: FastAPI reading the body and answering 202, under the hub's uvicorn
    settings (h11 with the hub's connection guard, no access log)."""
    import uvicorn

    from hub.serving import LISTEN_BACKLOG, ConnectionGuard, guarded_protocol

    app = FastAPI()

    @app.post("/v1/submissions")
    async def submit(request: Request) -> Response:
        body = await request.body()
        return Response(
            json.dumps({"v": 1, "received": len(body)}).encode(),
            status_code=202,
            media_type="application/json",
        )

    @app.get("/v1/log")
    async def log() -> JSONResponse:
        return JSONResponse({"size": 0})

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=guarded_protocol(ConnectionGuard(1024, 30.0)),
        backlog=LISTEN_BACKLOG,
        access_log=False,
        log_level="warning",
        server_header=False,
    )
    uvicorn.Server(config).run()


def start_hub(
    work: Path,
    database_url: str | None,
    extra: list[str],
    root: Path | None = None,
    port: int | None = None,
) -> Any:
    """A hub subprocess; with ``root``, the hub package of that checkout (a before/after
    comparison in one run: ``--compare-root`` names the other checkout)."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "hub.cli", "serve", "--data", str(work / "data")]
    cmd += ["--port", str(port), "--log-level", "warning", *HUB_SETTINGS, *extra]
    if database_url is not None:
        cmd += ["--database-url", database_url]
    if root is None:
        return start_server(cmd, port, work / f"hub-{port}.log")
    code = f"import sys; sys.path.insert(0, {str(root)!r}); import runpy; "
    code += "runpy.run_module('hub.cli', run_name='__main__')"
    cmd[1:3] = ["-c", code]
    return start_server(cmd, port, work / f"hub-{port}.log")


@contextlib.contextmanager
def sequence_process(
    work: Path, database_url: str | None, extra: list[str], root: Path | None = None
) -> Any:
    """``ncii-hub sequence`` on the hub's data directory (and database), once it holds the
    sequencer lock: the log's work in a second process (``--split``); with ``root``, that
    checkout's (as start_hub)."""
    cmd = [sys.executable, "-m", "hub.cli", "sequence", "--data", str(work / "data")]
    cmd += ["--log-level", "info", *HUB_SETTINGS, *extra]
    if database_url is not None:
        cmd += ["--database-url", database_url]
    if root is not None:
        code = f"import sys; sys.path.insert(0, {str(root)!r}); import runpy; "
        cmd[1:3] = ["-c", code + "runpy.run_module('hub.cli', run_name='__main__')"]
    log = work / "sequence.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while b"sequencer lock acquired" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ncii-hub sequence did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_mode_flags(
        parser,
        smoke="1 s phases, 8 connections, SQLite only",
        quick="5 s phases, 32 connections",
        full="10 s phases, 64 connections",
    )
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--connections", type=int)
    parser.add_argument("--envelopes", type=int)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-bare", action="store_true", help="skip the baseline")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--set", action="append", default=[], help="extra hub setting")
    parser.add_argument(
        "--procs", type=int, default=1, help="hub processes sharing the port (--reuse-port)"
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="also measure each database with 'serve --no-sequencer' beside 'ncii-hub sequence'",
    )
    parser.add_argument(
        "--compare-root", type=Path, help="also measure the hub of this checkout (before)"
    )
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--poll", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.poll is not None:
        poller_main(args.poll[0], Path(args.poll[1]))
        return
    if args.bare_server is not None:
        bare_server_main(args.bare_server)
        return
    plan = MODES[mode_of(args)]
    for key in ("seconds", "connections", "envelopes"):
        if getattr(args, key) is None:
            setattr(args, key, plan[key])
    if shutil.which("wrk") is None:
        # Figures show n/a (run_all's smoke run must not fail on a machine without wrk).
        print("bench_ingest: wrk is not installed (Debian package wrk); figures are n/a")
        report({}, None, args)
        return
    extra = [f"--set={s}" for s in args.set]
    postgres = plan["postgres"] and not args.no_postgres and args.only != "postgres"
    postgres = (plan["postgres"] and not args.no_postgres) and postgres_reachable()
    print(
        f"ingest benchmark: wrk, {args.connections} connections, {HASHES_PER_REQUEST} hashes per "
        f"signed submission (a new case each), {args.seconds:g} s per phase, "
        f"{os.cpu_count()} CPUs",
        file=sys.stderr,
    )
    results: dict[str, Figures] = {}
    bare: Load | None = None
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        lua = work / "post.lua"
        lua.write_text(LUA)
        envelopes = work / "envelopes.bin"
        make_envelopes(envelopes, args.envelopes)
        if not args.no_bare:
            port = free_port()
            server = start_server(
                [sys.executable, str(Path(__file__).resolve()), "--bare-server", str(port)],
                port,
                work / "bare.log",
            )
            try:
                bare = run_wrk(
                    server.url,
                    envelopes,
                    lua,
                    args.seconds,
                    args.connections,
                    0,
                    [server.proc.pid],
                    wrap=True,
                )
            finally:
                server.stop()
        dbs: list[tuple[str, str | None]] = []
        if args.only in (None, "sqlite"):
            dbs.append(("SQLite", None))
        if args.only in (None, "postgres") and postgres:
            dbs.append(("PostgreSQL", "pg"))
        runs = [(name, kind, None, False) for name, kind in dbs]
        if args.split:
            runs += [(f"{name}, two processes", kind, None, True) for name, kind in dbs]
        if args.compare_root is not None:
            before = [(f"{name} (before)", kind, args.compare_root, False) for name, kind in dbs]
            if args.split:
                before += [
                    (f"{name}, two processes (before)", kind, args.compare_root, True)
                    for name, kind in dbs
                ]
            runs = before + runs
        for name, kind, root, split in runs:
            sub = work / name.replace(" ", "_").replace(",", "")
            sub.mkdir()
            with contextlib.ExitStack() as stack:
                url = stack.enter_context(postgres_database()) if kind == "pg" else None
                procs = args.procs if root is None else 1
                shared = ["--reuse-port"] if procs > 1 else []
                port = free_port()
                first = [*extra, *shared] + (["--no-sequencer"] if split else [])
                hubs = [start_hub(sub, url, first, root, port)]
                try:
                    # More processes on the same port, data directory and database: the
                    # kernel spreads connections; the first holds the sequencer lock.
                    hubs += [
                        start_hub(sub, url, [*extra, *shared, "--no-sequencer"], root, port)
                        for _ in range(procs - 1)
                    ]
                    pids = [h.proc.pid for h in hubs]
                    if split:
                        seq = sequence_process(sub, url, extra, root)
                        pids.append(stack.enter_context(seq).pid)
                    results[name] = measure(hubs[0], pids, envelopes, lua, args, True, url)
                finally:
                    for hub in hubs:
                        hub.stop()
    report(results, bare, args)


def report(results: dict[str, Figures], bare: Load | None, args: argparse.Namespace) -> None:
    if bare is not None:
        print(
            f"bare FastAPI POST (same wrk, same uvicorn settings): {bare.rate:,.0f}/s, "
            f"server CPU {bare.cpu_ms:.2f} ms/request"
        )
    rows = Rows()
    for name, f in results.items():
        ratio = f.full.rate / bare.rate if bare is not None else float("nan")
        print(
            f"{name}: {f.full.rate:,.0f} submissions/s, {f.full.rate * HASHES_PER_REQUEST:,.0f} "
            f"hashes/s ({ratio:.2f}x bare); full-load 202 p50 {f.full.p50_ms:.1f} ms p99 "
            f"{f.full.p99_ms:.1f} ms; non-2xx {f.full.non2xx}, socket errors {f.full.errors}"
        )
        parts = f.full.cpu_parts_ms
        split = ""
        if len(parts) > 1:  # the last process is 'ncii-hub sequence' with --split
            split = " (" + " + ".join(f"{p:.2f}" for p in parts) + " by process)"
        print(
            f"  CPU per submission at full load: hub {f.full.cpu_ms:.2f} ms{split} (bare "
            f"{bare.cpu_ms if bare is not None else float('nan'):.2f} ms), PostgreSQL server "
            f"{f.full.db_cpu_ms:.2f} ms"
        )
        print(
            f"  half load ({f.half.rate:,.0f}/s): 202 p50 {f.half.p50_ms:.1f} ms, p99 "
            f"{f.half.p99_ms:.1f} ms; 202 -> checkpoint p50 {f.checkpoint_p50:.2f} s, "
            f"p99 {f.checkpoint_p99:.2f} s ({f.probes} probes; lower bounds p50 {f.low_p50:.2f} s, "
            f"p99 {f.low_p99:.2f} s); non-2xx {f.half.non2xx}"
        )
        hashes = f.full.rate * HASHES_PER_REQUEST
        rows.add(
            f"{name}: hashes accepted (wrk)",
            hashes,
            "/s",
            aim=">= 10,000/s",
            met=hashes >= 10_000,
        )
        rows.add(
            f"{name}: submissions accepted (wrk)",
            f.full.rate,
            "/s",
            "bare FastAPI POST (wrk)",
            None if bare is None else bare.rate,
            aim=">= 0.3x",
            met=bare is not None and f.full.rate >= 0.3 * bare.rate,
        )
        rows.add(
            f"{name}: 202 p99 at half load",
            f.half.p99_ms,
            "ms",
            aim="< 100 ms",
            met=f.half.p99_ms < 100,
        )
        rows.add(f"{name}: 202 p50 at half load", f.half.p50_ms, "ms")
        rows.add(
            f"{name}: hub CPU per submission",
            f.full.cpu_ms,
            "ms",
            "bare FastAPI CPU per POST",
            None if bare is None else bare.cpu_ms,
        )
        rows.add(
            f"{name}: 202 -> checkpoint p99 at half load",
            f.checkpoint_p99,
            "s",
            aim="< 1 s",
            met=f.checkpoint_p99 < 1.0,
        )
    if args.json:
        rows.print_json()


if __name__ == "__main__":
    main()
