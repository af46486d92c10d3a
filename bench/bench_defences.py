"""What the partner's defences cost per lookup, and where flood quarantine really triggers.

Figures (specs/partner-defences.md):

- matched lookups per second through ``Matcher.match_hashes`` (one PDQ query per call, each
  matching one stored entry: the worst case, since every matched call updates a flood sketch
  in defences.sqlite3), with the defences on (empty allow list; then 1,000 allow-listed PDQ
  hashes) against the same matcher with ``defences=False`` (same-run baseline);
- the number of distinct uploads at which an entry is quarantined with ``--flood-limit``
  500, over several fresh HMAC keys (the HyperLogLog estimate's spread; aim: within 10 %).

    .venv/bin/python bench/bench_defences.py --quick --json
"""

from __future__ import annotations

import argparse
import random
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Rows, add_mode_flags, mode_of

from hashing import PdqHash
from partner_sdk import Defences, FloodPolicy, Matcher
from partner_sdk.batch import Addition
from partner_sdk.store import Store, TrustedCheckpoint


def near(digest: bytes, seed: int, flips: int = 6) -> bytes:
    out = bytearray(digest)
    for bit in random.Random(seed).sample(range(256), flips):
        out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def make_store(directory: Path, n: int) -> list[bytes]:
    directory.mkdir(parents=True)
    values = [secrets.token_bytes(32) for _ in range(n)]
    store = Store(directory / "store.sqlite3")
    records = [(i, Addition("pdq", v, 90, ())) for i, v in enumerate(values)]
    store.apply_batch(0, n, records, TrustedCheckpoint(b"bench\n", n, bytes(32)), 0)
    store.close()
    return values


def lookups_per_second(matcher: Matcher, values: list[bytes], calls: int) -> float:
    queries = [PdqHash(near(values[i % len(values)], i), 90) for i in range(calls)]
    started = time.perf_counter()
    for q in queries:
        matcher.match_hashes([q])
    return calls / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_mode_flags(
        parser,
        smoke="1,000 entries, 300 calls, 2 keys",
        quick="10,000 entries, 3,000 calls, 10 keys",
        full="100,000 entries, 20,000 calls, 30 keys",
    )
    args = parser.parse_args()
    entries, calls, keys = {
        "smoke": (1_000, 300, 2),
        "quick": (10_000, 3_000, 10),
        "full": (100_000, 20_000, 30),
    }[mode_of(args)]
    rows = Rows()
    root = Path(tempfile.mkdtemp(prefix="bench-defences-"))
    try:
        values = make_store(root / "p", entries)
        with Matcher(root / "p", defences=False) as raw:
            base = lookups_per_second(raw, values, calls)
        print(f"without defences: {base:,.0f} matched lookups/s", file=sys.stderr)
        with Matcher(root / "p") as m:
            on = lookups_per_second(m, values, calls)
            assert m.defences is not None
            for _ in range(1000):
                m.defences.allow_hash(f"pdq:{secrets.token_hex(32)}")
            allowed = lookups_per_second(m, values, calls)
        for name, value in (("defences on", on), ("defences on, 1,000 allow-listed", allowed)):
            print(f"{name}: {value:,.0f} matched lookups/s ({value / base:.2f}x)")
            rows.add(
                f"{name}: matched PDQ lookups ({entries:,} entries)",
                value,
                "/s",
                "the same matcher without defences",
                base,
            )

        triggers: list[int] = []
        for k in range(keys):
            folder = root / f"k{k}"
            shutil.copytree(root / "p", folder, ignore=shutil.ignore_patterns("defences*"))
            with (
                Defences(folder, flood=FloodPolicy(limit=500)) as d,
                Matcher(folder, defences=d) as m,
            ):
                target = values[k]
                seed = 0
                while m.match_hashes([PdqHash(near(target, seed + 10**6 * k), 90)])[0]:
                    seed += 1
                triggers.append(seed + 1)
        mean = sum(triggers) / len(triggers)
        worst = max(abs(t - 501) for t in triggers) / 501
        print(
            f"flood limit 500: quarantined after {min(triggers)}..{max(triggers)} distinct "
            f"uploads (mean {mean:.0f}, worst {100 * worst:.1f} % off) over {keys} keys"
        )
        rows.add(
            "distinct uploads until quarantine at --flood-limit 500 (mean)",
            mean,
            "uploads",
            "the limit + 1",
            501,
        )
        rows.add(
            "worst relative error of the quarantine point",
            100 * worst,
            "%",
            aim="<= 10 %",
            met=worst <= 0.10,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        rows.print_json()
    return 0


if __name__ == "__main__":
    sys.exit(main())
