"""Benchmark: ``threatexchange fetch`` through partner_sdk.pytx beside ``ncii-partner sync``.

Both read the same log in the same run: a hub data directory built with bench_feed_sync's
library calls (n additions, PDQ/MD5/SHA-256 in turn, sealed for two registered partners),
served by ``ncii-hub serve --no-sequencer``. The baseline is ``ncii-partner sync`` into one
partner folder (the SDK's verified sync on its own); the figure is ``threatexchange fetch``
(the real pytx CLI with the ``ncii_exchange`` collaboration) into the other, which runs the
same verified sync, hands the entries to pytx, lets pytx save its state and rebuild its match
indexes. A second fetch with nothing new measures the cost of a fetch that only re-verifies
(and a third with ``--skip-index-rebuild`` separates pytx's index rebuild, which re-reads its
whole state file once per signal type).
Each command is a real subprocess; its peak memory comes from wait4().

    .venv/bin/python bench/bench_pytx.py            # 100,000 entries
    .venv/bin/python bench/bench_pytx.py --quick    # 10,000 entries
    .venv/bin/python bench/bench_pytx.py --smoke    # 300 entries (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from _report import Rows, add_mode_flags, mode_of
from bench_feed_sync import build_log, free_port, seal

from partner_sdk import init_partner

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SIZES = {"smoke": 300, "quick": 10_000, "full": 100_000}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """(seconds, peak RSS in MiB, stderr tail) of one command; exits on failure."""
    began = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    err = proc.stderr.read().decode("utf-8", "replace")
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv[:3])} exited {proc.returncode}:\n{err[-2000:]}")
    return seconds, usage.ru_maxrss // 1024, "\n".join(err.strip().splitlines()[-3:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_mode_flags(ap, smoke="300 entries", quick="10,000 entries", full="100,000 entries")
    args = ap.parse_args()
    n = SIZES[mode_of(args)]
    rows = Rows()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sdk_dir, tx_dir = root / "partner-sdk", root / "partner-pytx"
        init_partner(sdk_dir, "p0")
        init_partner(tx_dir, "p1")
        data, url = root / "hub", f"sqlite:///{root}/hub.sqlite3"
        log(f"building and sealing a log of {n:,} entries ...")
        build_log(data, url, n)
        seal(data, url, [sdk_dir, tx_dir])
        port = free_port()
        hub = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TX_VERBOSE")}
        env.update(HOME=str(root / "home"), TX_STATEDIR=str(root / "txstate"))
        (root / "home").mkdir()
        server = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "serve", "--data", str(data), "--port", str(port),
             "--database-url", url, "--no-sequencer", "--log-level", "warning"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        try:
            for _ in range(600):
                try:
                    key = httpx.get(hub + "/v1/log", timeout=1).json()["verifier_key"]
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            log("ncii-partner sync ...")
            sync_s, sync_mib, _ = timed(
                [str(BIN / "ncii-partner"), "sync", "--dir", str(sdk_dir), "--hub", hub,
                 "--log-key", key], env,
            )  # fmt: skip
            tx = str(BIN / "threatexchange")
            timed([tx, "config", "extensions", "add", "partner_sdk.pytx"], env)
            config = {"name": "ncii", "hub": hub, "log_key": key, "partner_dir": str(tx_dir)}
            timed([tx, "config", "collab", "edit", "ncii_exchange", "--create", "--json",
                   json.dumps(config)], env)  # fmt: skip
            log("threatexchange fetch ...")
            fetch_s, fetch_mib, tail = timed([tx, "fetch"], env)
            log(tail)
            log("threatexchange fetch (nothing new) ...")
            again_s, _, _ = timed([tx, "fetch"], env)
            log("threatexchange fetch --skip-index-rebuild (nothing new) ...")
            skip_s, _, _ = timed([tx, "fetch", "--skip-index-rebuild"], env)
            log("ncii-partner sync (nothing new) ...")
            sync_again_s, _, _ = timed(
                [str(BIN / "ncii-partner"), "sync", "--dir", str(sdk_dir)], env
            )
        finally:
            server.terminate()
            server.wait(20)
        state = next((root / "txstate").glob("**/ncii.state.pickle"))
        print(
            f"n={n:,}: ncii-partner sync {sync_s:.2f} s ({n / sync_s:,.0f} entries/s, "
            f"{sync_mib} MiB); threatexchange fetch {fetch_s:.2f} s ({n / fetch_s:,.0f} "
            f"entries/s, {fetch_mib} MiB) = {fetch_s / sync_s:.2f}x the sync; pytx state file "
            f"{state.stat().st_size / 1e6:.1f} MB"
        )
        print(
            f"nothing new: threatexchange fetch {again_s:.2f} s ({skip_s:.2f} s with "
            f"--skip-index-rebuild), ncii-partner sync {sync_again_s:.2f} s"
        )
        rows.add(f"threatexchange fetch {n:,} entries", fetch_s, "s",
                 f"ncii-partner sync {n:,} entries", sync_s)  # fmt: skip
        rows.add(f"threatexchange fetch {n:,} entries", n / fetch_s, "entries/s",
                 f"ncii-partner sync {n:,} entries", n / sync_s)  # fmt: skip
        rows.add("threatexchange fetch peak RSS", fetch_mib, "MiB",
                 "ncii-partner sync peak RSS", sync_mib)  # fmt: skip
        rows.add("threatexchange fetch, nothing new", again_s, "s",
                 "ncii-partner sync, nothing new", sync_again_s)  # fmt: skip
        rows.add("threatexchange fetch --skip-index-rebuild, nothing new", skip_s, "s",
                 "ncii-partner sync, nothing new", sync_again_s)  # fmt: skip
    if args.json:
        rows.print_json()


if __name__ == "__main__":
    main()
