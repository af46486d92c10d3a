"""Benchmark: partner feed sealing (hub) and full verified sync (partner_sdk), with baselines.

Hub-side state is built directly through hub/ library calls (entries sealed at rest as intake
does, then the real Sequencer.publish_pending writes tiles and signs the checkpoint; the real
FeedSealer seals the feed). The sync is the SDK's real code (Partner.sync) over real HTTP
against ``ncii-hub serve --no-sequencer`` on that data directory: decrypt, recompute every
leaf, prove it through tiles against the verified checkpoint, parse, store in SQLite.

Baselines measured in the same run: raw XChaCha20-Poly1305 (libsodium via PyNaCl) and raw
SHA-256 (hashlib, 64-byte input). Figures print as rates and ratios to those baselines.

    .venv/bin/python bench/bench_feed_sync.py            # 100,000 and 1,000,000 entries
    .venv/bin/python bench/bench_feed_sync.py --quick    # 2,000 and 20,000 entries
    .venv/bin/python bench/bench_feed_sync.py --smoke    # 300 entries (CI)

    .venv/bin/python bench/bench_feed_sync.py --sizes 100000,1000000 --keep DIR --repeat 3
    .venv/bin/python bench/bench_feed_sync.py --store-only --store-sizes 100000,10000000

``--keep DIR`` builds the logs, partner keys and sealed feeds in DIR and reuses them on later
runs (building a log of 1,000,000 entries takes minutes; sealing is then not measured again);
``--repeat`` syncs each size several times (a shared machine: the best of them is reported,
each with the load average beside it). ``--store-only`` runs only the store-write part.

``--pipeline-sizes 100000,10000000`` measures only the partner side of a sync (worker
processes, store writes, hash index; no hub, no HTTP, no decryption, no tile proofs) on
decrypted feed batches written once to a file (kept in ``--keep DIR``).

``--compare-root DIR`` also syncs with the partner_sdk of checkout DIR (e.g. /work/main), after
each sync of this one against the same hub and data, and prints both wall and CPU seconds
(the syncing process plus its worker processes).

``--json`` prints, as the last line of stdout, the rows of bench/README.md's convention for the
largest size instead of the closing ``{"done": true}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import nacl.bindings
from _report import Rows, add_mode_flags, mode_of
from sqlalchemy import delete, func, select, update

from crypto.commitment import LeafKind, commit, encode_leaf
from crypto.merkle import EMPTY_ROOT, leaf_hash
from crypto.tree_state import TreeState
from hub.atrest import seal_entry
from hub.db.engine import create_schema, make_engine
from hub.db.models import (
    CaseRow,
    EntryRow,
    FeedBatchRow,
    FeedRedactionRow,
    FeedStateRow,
    FeedWrapRow,
    LogStateRow,
    PartnerRow,
    table_of,
)
from hub.feed import FeedFiles, FeedSealer
from hub.keystore import load_keys
from hub.partners import PartnerKeys as HubPartnerKeys
from hub.partners import PartnerRegistry
from hub.sequencer import Sequencer, sign_tree_head
from hub.storage import SqlStorage
from hub.submission import addition_entry
from hub.tilestore import FileTileStore
from partner_sdk import init_partner
from partner_sdk.batch import HEADER, MAGIC, VERSION, Addition
from partner_sdk.keys import load_keys as load_partner_keys
from partner_sdk.store import Record, Store, TrustedCheckpoint

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"smoke": [300], "quick": [2_000, 20_000], "full": [100_000, 1_000_000]}
STORE_SIZES = {
    "smoke": [3_000],
    "quick": [100_000, 1_000_000],
    "full": [100_000, 1_000_000, 10_000_000],
}
KEPT_MAX = 1_000_000  # the old way (hash index kept during the load) only up to this size


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def baselines() -> tuple[float, float]:
    """(XChaCha20-Poly1305 MB/s on 64 KiB messages, SHA-256 hashes/s of 64-byte inputs)."""
    key, nonce, msg = os.urandom(32), os.urandom(24), os.urandom(64 << 10)
    best_aead = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(200):
            nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(msg, b"", nonce, key)
        best_aead = max(best_aead, 200 * len(msg) / (time.perf_counter() - t) / 1e6)
    data = os.urandom(64)
    sha = hashlib.sha256
    best_sha = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(200_000):
            sha(data).digest()
        best_sha = max(best_sha, 200_000 / (time.perf_counter() - t))
    return best_aead, best_sha


_BODY = {  # addition_entry's canonical bytes for each kind; checked against it in build_log
    0: b'{"hash":{"algorithm":"pdq","hash":"%s","quality":90},"kind":"addition","v":1}',
    1: b'{"hash":{"algorithm":"md5","hash":"%s"},"kind":"addition","v":1}',
    2: b'{"hash":{"algorithm":"sha256","hash":"%s"},"kind":"addition","v":1}',
}
_ALGORITHM = {0: "pdq", 1: "md5", 2: "sha256"}


def build_log(data: Path, url: str, n: int) -> None:
    """n additions (PDQ, MD5, SHA-256 in turn) sealed at rest, sequenced, tiled, signed.

    Built in bulk (a log of 10 million entries in reasonable time): per case of 5,000
    entries one read of random bytes for salts, entry keys and hash values, one
    ``executemany`` of plain tuples, the tree state extended per case; every entry is still
    committed (crypto.commitment) and sealed at rest (hub.atrest.seal_entry) as intake does,
    and the real Sequencer writes the tiles and signs the checkpoint."""
    keys = load_keys(data, "bench.example/ncii")
    engine = make_engine(url)
    create_schema(engine, sign_tree_head(keys, 0, EMPTY_ROOT))
    cases, entries, state_t = table_of(CaseRow), table_of(EntryRow), table_of(LogStateRow)
    for kind, template in _BODY.items():  # the templates are addition_entry's bytes
        sample = os.urandom(16 if kind == 1 else 32).hex()
        h: dict[str, object] = {"algorithm": _ALGORITHM[kind], "hash": sample}
        if kind == 0:
            h["quality"] = 90
        assert template % sample.encode() == addition_entry(h), kind
    per_case = 5000
    insert_cases = (
        f"INSERT INTO {cases.name} (case_id, public_key, withdrawn, entry_count, created_at) "
        "VALUES (?, ?, 0, ?, 0)"
    )
    insert_entries = (
        f"INSERT INTO {entries.name} (entry_id, case_id, kind, leaf_data, leaf_hash, "
        "ciphertext, log_index, created_at) VALUES (?, ?, 1, ?, ?, ?, ?, 0)"
    )
    tree = TreeState.empty()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("BEGIN IMMEDIATE")  # make_engine's connections leave BEGIN to the caller
        for c0 in range(0, n, per_case):
            case_id = f"{c0 // per_case:016x}"
            count = min(per_case, n - c0)
            cur.execute(insert_cases, (case_id, os.urandom(32), count))
            rnd = os.urandom(count * 96)  # salt, entry key, hash value (32 bytes each)
            rows = []
            entry_keys = []
            leaf_hashes = []
            for j in range(count):
                i = c0 + j
                kind = i % 3
                o = j * 96
                salt, ek = rnd[o : o + 32], rnd[o + 32 : o + 64]
                value = rnd[o + 64 : o + (80 if kind == 1 else 96)]
                body = _BODY[kind] % value.hex().encode()
                entry_id = f"{i:032x}"
                leaf = encode_leaf(LeafKind.ADDITION, commit(body, salt))
                lh = leaf_hash(leaf)
                entry_keys.append((entry_id, ek))
                leaf_hashes.append(lh)
                rows.append(
                    (entry_id, case_id, leaf, lh, seal_entry(ek, case_id, entry_id, salt, body), i)
                )
            keys.vault.put_entry_keys(entry_keys)
            cur.executemany(insert_entries, rows)
            tree, _ = tree.append(leaf_hashes)
        cur.execute(
            f"UPDATE {state_t.name} SET size = ?, state = ? WHERE id = 1", (n, tree.to_bytes())
        )
        cur.execute("COMMIT")
    finally:
        raw.close()
    Sequencer(SqlStorage(engine), FileTileStore(data / "tiles"), keys).recover()
    engine.dispose()


def reset_feed(data: Path, url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        for model in (FeedBatchRow, FeedWrapRow, FeedRedactionRow, FeedStateRow):
            conn.execute(delete(table_of(model)))
        conn.execute(delete(table_of(PartnerRow)))
    engine.dispose()
    shutil.rmtree(data / "feed", ignore_errors=True)


def seal(data: Path, url: str, partner_dirs: list[Path]) -> tuple[float, int, int]:
    """(seconds, feed file bytes, wrap bytes) to seal the whole log for these partners."""
    reset_feed(data, url)
    keys = load_keys(data, None)
    engine = make_engine(url)
    registry = PartnerRegistry(engine)
    for i, d in enumerate(partner_dirs):
        pk = load_partner_keys(d)
        registry.add(f"p{i}", HubPartnerKeys(f"p{i}", pk.request_public, pk.feed_public), 0)
    with engine.begin() as conn:  # wraps come from sealing itself, not from a later rewrap
        conn.execute(update(table_of(PartnerRow)).values(rewrap=False))
    sealer = FeedSealer(engine, FeedFiles(data / "feed"), keys, max_age=0.0)  # default batch size
    t = time.perf_counter()
    sealer.seal_ready()
    seconds = time.perf_counter() - t
    files = sum(p.stat().st_size for p in (data / "feed").iterdir())
    wraps_t = table_of(FeedWrapRow)
    with engine.connect() as conn:
        wraps = int(conn.execute(select(func.sum(func.length(wraps_t.c.wrap)))).scalar() or 0)
    engine.dispose()
    return seconds, files, wraps


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_SYNC_SCRIPT = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from partner_sdk import Partner
t = time.perf_counter()
with Partner(sys.argv[2], sys.argv[3], sys.argv[4]) as p:
    summary = p.sync()
seconds = time.perf_counter() - t
own = resource.getrusage(resource.RUSAGE_SELF)
workers = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime
print(json.dumps({"seconds": seconds, "cursor": summary.cursor, "cpu": cpu}))
"""


def _python_of(root: Path) -> str:
    venv = root / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def sync(
    data: Path, url: str, partner_dir: Path, roots: list[Path]
) -> list[tuple[float, int, float]]:
    """(seconds, cursor, CPU seconds of the syncing process and its workers) of a full sync
    by each checkout in ``roots`` (this one first), one after the other against one hub.

    Each sync runs in a fresh process of that checkout's code (its own venv if it has one), so
    the before and after figures come from the same run, data and hub."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hub.cli",
            "serve",
            "--data",
            str(data),
            "--port",
            str(port),
            "--database-url",
            url,
            "--no-sequencer",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    hub = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                info = httpx.get(hub + "/v1/log", timeout=1).json()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        out = []
        for root in roots:
            (partner_dir / "store.sqlite3").unlink(missing_ok=True)
            done = subprocess.run(
                [
                    _python_of(root),
                    "-c",
                    _SYNC_SCRIPT,
                    str(root),
                    str(partner_dir),
                    hub,
                    info["verifier_key"],
                ],
                cwd=root,
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            out.append((result["seconds"], result["cursor"], result["cpu"]))
        return out
    finally:
        proc.terminate()
        proc.wait(20)


_PIPELINE_SCRIPT = """
import json, resource, struct, sys, time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
sys.path.insert(0, sys.argv[1])
from partner_sdk.store import Store, TrustedCheckpoint
from partner_sdk.sync import _worker_count
from partner_sdk.syncworker import WorkerPool
feed, n, store_path = sys.argv[2], int(sys.argv[3]), sys.argv[4]
t = time.perf_counter()
store = Store(__import__("pathlib").Path(store_path))
store.defer_hash_index()
cp = TrustedCheckpoint(b"bench", n, bytes(32))
workers = _worker_count()
pool = WorkerPool(workers)
fetch = ThreadPoolExecutor(workers + 1)
def batches():
    with open(feed, "rb") as f:
        while head := f.read(20):
            start, end, size = struct.unpack(">QQI", head)
            yield start, end, f.read(size)
ahead = deque()
for start, end, plaintext in batches():
    ahead.append((start, end, fetch.submit(pool.prepare, plaintext, start, end, start, n)))
    if len(ahead) > workers + 1:
        s, e, work = ahead.popleft()
        store.apply_batch(s, e, work.result().plan, cp, 0)
while ahead:
    s, e, work = ahead.popleft()
    store.apply_batch(s, e, work.result().plan, cp, 0)
fetch.shutdown()
pool.close()
i = time.perf_counter()
store.build_hash_index()
index = time.perf_counter() - i
assert store.state().cursor == n
store.close()
seconds = time.perf_counter() - t
own = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
print(json.dumps({"seconds": seconds, "cpu": cpu, "index": index}))
"""


def write_feed(path: Path, n: int, per_batch: int = 4096) -> None:
    """Decrypted feed batches of n canonical additions (PDQ, MD5, SHA-256 in turn) for
    :func:`pipeline`: per batch its start, end and plaintext length, then the plaintext."""
    with open(path, "wb") as f:
        for b0 in range(0, n, per_batch):
            count = min(per_batch, n - b0)
            rnd = os.urandom(count * 64)
            parts = [HEADER.pack(MAGIC, VERSION, b0, b0 + count, count)]
            for j in range(count):
                kind = (b0 + j) % 3
                o = j * 64
                value = rnd[o + 32 : o + (48 if kind == 1 else 64)]
                body = _BODY[kind] % value.hex().encode()
                parts += [b"\x01\x01", rnd[o : o + 32], len(body).to_bytes(4, "big"), body]
            plaintext = b"".join(parts)
            f.write(struct.pack(">QQI", b0, b0 + count, len(plaintext)))
            f.write(plaintext)


def pipeline(root: Path, checkout: Path, n: int) -> tuple[float, float, float]:
    """(seconds, CPU seconds, index seconds) of the partner side of a sync of n entries by
    ``checkout``'s code: worker processes decode each batch, recompute every leaf and the
    batch's subtree roots and plan its rows; the store applies the batches in order (one
    transaction each) and builds its hash index at the end. What a full sync adds: HTTP,
    decryption and the roots' comparison with the log's tiles (no hub: a log of 10 million
    entries takes about an hour to build and seal on the shared 2-core machine)."""
    feed = root / f"feed-{n}.bin"
    if not feed.exists():
        log(f"writing {n:,} decrypted feed entries ...")
        write_feed(feed, n)
    store = root / f"pipeline-{n}.sqlite3"
    try:
        done = subprocess.run(
            [
                _python_of(checkout),
                "-c",
                _PIPELINE_SCRIPT,
                str(checkout),
                str(feed),
                str(n),
                str(store),
            ],
            cwd=checkout,
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(str(store) + suffix).unlink(missing_ok=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["seconds"], result["cpu"], result["index"]


def pipeline_scaling(root: Path, sizes: list[int], args: argparse.Namespace, rows: Rows) -> None:
    checkouts = [ROOT] + ([args.compare_root] if args.compare_root else [])
    rates: dict[int, float] = {}
    for n in sizes:
        best: dict[Path, tuple[float, float, float]] = {}
        for _ in range(max(1, args.repeat)):
            for checkout in checkouts:  # alternating: this one, then the other
                log(f"partner pipeline of {n:,} entries [{checkout}] ...")
                s, cpu, index = pipeline(root, checkout, n)
                print(
                    f"pipeline n={n:,} [{checkout}]: {s:6.2f} s ({n / s:,.0f} entries/s), "
                    f"CPU {cpu:6.2f} s ({cpu / n * 1e6:.2f} us/entry), index {index:5.2f} s "
                    f"(load average {os.getloadavg()[0]:.1f})"
                )
                if checkout not in best or s < best[checkout][0]:
                    best[checkout] = (s, cpu, index)
        rates[n] = n / best[ROOT][0]
        if args.compare_root:
            old = best[args.compare_root]
            rows.add(
                f"partner pipeline {n:,} entries",
                rates[n],
                "entries/s",
                "the same before (--compare-root)",
                n / old[0],
            )
    small, large = min(sizes), max(sizes)
    if large > small:
        slowdown = rates[small] / rates[large]
        print(
            f"pipeline: rate at {small:,} is {slowdown:.2f}x the rate at {large:,} "
            "(aim: at most 1.5x)"
        )


def store_apply(root: Path, n: int, bulk: bool) -> float:
    """Seconds Store.apply_batch takes for n synthetic verified entries in batches of 4096
    (PDQ, MD5, SHA-256 in turn), plus the index build at the end when ``bulk``.

    What grows with the store's size is this part of a sync (the per-entry verification
    before it costs the same at any size), so it is measured alone up to 10 million."""
    path = root / f"store-{n}-{int(bulk)}.sqlite3"
    store = Store(path)
    cp = TrustedCheckpoint(b"bench", n, bytes(32))
    rng = random.Random(n)
    algorithms = (("pdq", 32, 90), ("md5", 16, None), ("sha256", 32, None))
    seconds = 0.0
    try:
        t = time.perf_counter()
        if bulk:
            store.defer_hash_index()
        seconds += time.perf_counter() - t
        for start in range(0, n, 4096):
            end = min(n, start + 4096)
            records: list[Record] = []
            for i in range(start, end):
                alg, size, quality = algorithms[i % 3]
                records.append((i, Addition(alg, rng.randbytes(size), quality)))
            t = time.perf_counter()
            store.apply_batch(start, end, records, cp, 0)
            seconds += time.perf_counter() - t
        t = time.perf_counter()
        if bulk:
            store.build_hash_index()
        seconds += time.perf_counter() - t
    finally:
        store.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    return seconds


def store_scaling(root: Path, sizes: list[int], rows: Rows) -> None:
    rates: dict[int, float] = {}
    for n in sizes:
        log(f"store apply of {n:,} entries ...")
        bulk = n / store_apply(root, n, True)
        rates[n] = bulk
        line = f"store apply n={n:,}: {bulk:,.0f} entries/s (hash index built at the end)"
        if n <= KEPT_MAX:
            kept = n / store_apply(root, n, False)
            line += (
                f"; {kept:,.0f}/s with the index kept during the load (before): {bulk / kept:.2f}x"
            )
            rows.add(
                f"store apply {n:,} entries, index built at the end",
                bulk,
                "entries/s",
                "the same with the hash index kept (before)",
                kept,
            )
        print(line)
    small, large = min(sizes), max(sizes)
    if large > small:
        slowdown = rates[small] / rates[large]
        print(
            f"store apply: rate at {small:,} is {slowdown:.2f}x the rate at {large:,} "
            "(aim: at most 1.5x)"
        )
        rows.add(
            f"store apply {large:,} entries",
            rates[large],
            "entries/s",
            f"store apply {small:,} entries",
            rates[small],
            aim=">= 1/1.5 of the small-store rate",
            met=slowdown <= 1.5,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_mode_flags(
        ap,
        smoke="300 entries",
        quick="2,000 and 20,000 entries",
        full="100,000 and 1,000,000 entries",
    )
    ap.add_argument(
        "--sizes",
        help="comma-separated log sizes to sync instead of the mode's (e.g. 100000,10000000)",
    )
    ap.add_argument(
        "--no-store-scaling", action="store_true", help="skip the store-only scaling part"
    )
    ap.add_argument(
        "--keep",
        type=Path,
        help="build logs, partners and sealed feeds in this folder and reuse them on later runs "
        "(skips building and sealing when present; the sync is measured afresh each run)",
    )
    ap.add_argument("--repeat", type=int, default=1, help="sync each size this many times")
    ap.add_argument(
        "--compare-root",
        type=Path,
        help="also sync with this checkout's partner_sdk (before), alternating, same hub and data",
    )
    ap.add_argument(
        "--seal-partners",
        default="1,100",
        help="partner counts to seal the feed for when building (the last one's feed is kept; "
        "'1' halves the building time of a large log)",
    )
    ap.add_argument(
        "--store-sizes",
        help="comma-separated sizes for the store-only scaling part (e.g. 100000,10000000)",
    )
    ap.add_argument("--store-only", action="store_true", help="only the store-only scaling part")
    ap.add_argument(
        "--pipeline-sizes",
        help="only the partner side of a sync (no hub) at these sizes, e.g. 100000,10000000",
    )
    args = ap.parse_args()
    sizes = SIZES[mode_of(args)]
    if args.sizes:
        sizes = [int(x) for x in args.sizes.split(",")]
    if args.store_only:
        sizes = []
    store_sizes = STORE_SIZES[mode_of(args)]
    if args.store_sizes:
        store_sizes = [int(x) for x in args.store_sizes.split(",")]
    rows = Rows()
    if args.pipeline_sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = args.keep if args.keep is not None else Path(tmp)
            root.mkdir(parents=True, exist_ok=True)
            pipeline_scaling(root, [int(x) for x in args.pipeline_sizes.split(",")], args, rows)
        if args.json:
            rows.print_json()
        else:
            print(json.dumps({"done": True}))
        return
    aead_mb, sha_rate = baselines()
    entry_bytes = 150  # plaintext bytes per entry in a batch (body ~110 + salt + framing)
    print(
        f"baseline XChaCha20-Poly1305: {aead_mb:,.0f} MB/s = {aead_mb * 1e6 / entry_bytes:,.0f} "
        f"entries/s of {entry_bytes} B; SHA-256 (64 B): {sha_rate:,.0f}/s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.keep is not None:
            root = args.keep
            root.mkdir(parents=True, exist_ok=True)
        partners = []
        for i in range(100):
            d = root / f"partner{i}"
            if not (d / "feed.key").exists():
                init_partner(d, f"p{i}")
            partners.append(d)
        sync_rates: dict[int, float] = {}
        compared: dict[int, list[tuple[tuple[float, int, float], tuple[float, int, float]]]] = {}
        for n in sizes:
            data = root / f"hub{n}"
            url = f"sqlite:///{root}/hub{n}.sqlite3"
            sealed_mark = root / f"hub{n}.sealed"
            if not sealed_mark.exists():
                shutil.rmtree(data, ignore_errors=True)
                Path(f"{root}/hub{n}.sqlite3").unlink(missing_ok=True)
                log(f"building a log of {n:,} entries ...")
                t = time.perf_counter()
                build_log(data, url, n)
                log(f"  built in {time.perf_counter() - t:.1f} s")
            results = {}
            seal_counts = [int(x) for x in args.seal_partners.split(",")]
            for count in seal_counts if not sealed_mark.exists() else ():
                log(f"sealing {n:,} entries for {count} partner(s) ...")
                results[count] = seal(data, url, partners[:count])
                s, fb, wb = results[count]
                print(
                    f"seal n={n:,} partners={count:>3}: {s:6.1f} s ({n / s:,.0f} entries/s), "
                    f"ciphertext {fb / 1e6:,.1f} MB, wraps {wb / 1e6:,.2f} MB"
                )
            if 1 in results and 100 in results:
                ratio = results[100][0] / results[1][0]
                stored1, stored100 = sum(results[1][1:]), sum(results[100][1:])
                print(
                    f"seal n={n:,}: 100 partners cost {ratio:.2f}x one partner (not 100x); "
                    f"bytes {stored100 / stored1:.3f}x"
                )
            if results:
                if args.keep is not None:
                    sealed_mark.touch()
            else:
                print(f"seal n={n:,}: reused the sealed feed in {root} (not measured)")
            times = []
            roots = [ROOT] + ([args.compare_root] if args.compare_root else [])
            for _ in range(max(1, args.repeat)):
                log(f"syncing {n:,} entries ...")
                runs = sync(data, url, partners[0], roots)
                for (s, cursor, cpu), checkout in zip(runs, roots, strict=True):
                    assert cursor == n, (cursor, n)
                    who = "" if checkout == ROOT else f" [{checkout}]"
                    print(
                        f"sync n={n:,}{who}: {s:6.2f} s, CPU {cpu:6.2f} s "
                        f"({cpu / n * 1e6:.2f} us/entry) (load average {os.getloadavg()[0]:.1f})"
                    )
                times.append(runs[0][0])
                if len(runs) > 1:
                    compared.setdefault(n, []).append((runs[0], runs[1]))
            s = min(times)
            rate = n / s
            sync_rates[n] = rate
            if n == 1_000_000:
                rows.add(
                    "full verified sync of 1,000,000 entries",
                    s,
                    "s",
                    "the same entries at the XChaCha20-Poly1305 rate alone",
                    n / (aead_mb * 1e6 / entry_bytes),
                    aim="< 10 s",
                    met=s < 10,
                )
            print(
                f"sync n={n:,}: {s:6.1f} s, {rate:,.0f} entries/s verified+stored; "
                f"= 1/{aead_mb * 1e6 / entry_bytes / rate:,.0f} of raw AEAD rate, "
                f"{sha_rate / rate:,.0f} SHA-256 per entry-time"
            )
            if n == sizes[-1]:
                aead = f"XChaCha20-Poly1305 of {entry_bytes}-B entries"
                aead_entries = aead_mb * 1e6 / entry_bytes
                rows.add(
                    f"sync {n:,} entries: verified+stored", rate, "entries/s", aead, aead_entries
                )
                rows.add(
                    f"sync {n:,} entries: verified+stored",
                    rate,
                    "/s",
                    "SHA-256 of 64 B",
                    sha_rate,
                )
            if n == sizes[-1] and 1 in results and 100 in results:
                rows.add(
                    f"seal {n:,} entries, 1 partner",
                    n / results[1][0],
                    "entries/s",
                    aead,
                    aead_entries,
                )
                rows.add(
                    f"seal {n:,} entries, 100 partners",
                    results[100][0],
                    "s",
                    "the same for 1 partner",
                    results[1][0],
                )
        if len(sizes) > 1:
            small, large = min(sizes), max(sizes)
            slowdown = sync_rates[small] / sync_rates[large]
            print(
                f"sync: rate at {small:,} is {slowdown:.2f}x the rate at {large:,} "
                "(aim: at most 1.5x)"
            )
            rows.add(
                f"sync {large:,} entries",
                sync_rates[large],
                "entries/s",
                f"sync {small:,} entries",
                sync_rates[small],
                aim=">= 1/1.5 of the small-log rate",
                met=slowdown <= 1.5,
            )
        for n, pairs in compared.items():
            best_new = min(p[0][0] for p in pairs)
            best_old = min(p[1][0] for p in pairs)
            cpu_new = min(p[0][2] for p in pairs)
            cpu_old = min(p[1][2] for p in pairs)
            print(
                f"sync n={n:,}: {best_new:.2f} s here vs {best_old:.2f} s in {args.compare_root} "
                f"({best_old / best_new:.2f}x); CPU {cpu_new:.2f} s vs {cpu_old:.2f} s "
                f"({cpu_old / cpu_new:.2f}x less)"
            )
            rows.add(
                f"sync {n:,} entries: CPU of the syncing process and its workers",
                cpu_new,
                "s",
                "the same before (--compare-root)",
                cpu_old,
            )
        if not args.no_store_scaling:
            store_scaling(root, store_sizes, rows)
    if args.json:
        rows.print_json()
    else:
        print(json.dumps({"done": True}))


if __name__ == "__main__":
    main()
