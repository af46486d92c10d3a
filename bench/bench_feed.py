"""Feed encryption throughput, beside raw SHA-256 measured in the same run.

Prints XChaCha20-Poly1305 seal/open MB/s for a 1 MB batch, HPKE key wraps/unwraps per second,
and the same figures as ratios to SHA-256 MB/s (the baseline), so results compare across
machines. Run: .venv/bin/python bench/bench_feed.py [--smoke] [--json]
(``--json``: the rows of bench/README.md's convention as the last line of stdout.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crypto import feed

BATCH = 1 << 20
MB = BATCH / 1e6


def rate(fn: Callable[[], object], min_seconds: float = 0.5) -> float:
    """Calls per second, best of 3 runs of at least ``min_seconds`` each."""
    best = 0.0
    for _ in range(3):
        count = 0
        start = time.perf_counter()
        while True:
            fn()
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = max(best, count / elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="same as the default (it is short)")
    parser.add_argument("--smoke", action="store_true", help="0.05 s per figure (for CI)")
    parser.add_argument("--json", action="store_true", help="also print JSON rows (last line)")
    args = parser.parse_args()
    seconds = 0.05 if args.smoke else 0.5
    plaintext = os.urandom(BATCH)
    binding = feed.BatchBinding("bench.example/log", 0, 4096)
    key = feed.new_batch_key()
    nonce = os.urandom(24)
    sealed = feed.seal_batch(plaintext, binding, key, nonce)
    encoded = sealed.encode()
    recipient = feed.generate_recipient_key()
    public = recipient.public_key()
    wrap = feed.wrap_key(key, public, binding)

    sha = rate(lambda: hashlib.sha256(plaintext).digest(), seconds) * MB
    seal = rate(lambda: feed.seal_batch(plaintext, binding, key, nonce), seconds) * MB
    open_ = rate(lambda: feed.open_batch(encoded, binding, key), seconds) * MB
    wraps = rate(lambda: feed.wrap_key(key, public, binding), seconds)
    unwraps = rate(lambda: feed.unwrap_key(wrap, recipient, binding), seconds)

    print("feed encryption benchmark (1 MB batch; baseline = SHA-256 of the same bytes)")
    print(f"  SHA-256 (baseline)          {sha:9.1f} MB/s   1.00x")
    print(f"  XChaCha20-Poly1305 seal     {seal:9.1f} MB/s   {seal / sha:.2f}x SHA-256")
    print(f"  XChaCha20-Poly1305 open     {open_:9.1f} MB/s   {open_ / sha:.2f}x SHA-256")
    # A wrap's cost as the number of kilobytes SHA-256 hashes in the same time.
    for label, per_second in (("HPKE key wrap", wraps), ("HPKE key unwrap", unwraps)):
        equivalent_kb = sha * 1e3 / per_second
        print(f"  {label:<27} {per_second:9.0f} /s     = SHA-256 of {equivalent_kb:.1f} KB")
    if args.json:
        base = {"baseline_name": "SHA-256 of the same bytes", "baseline_value": sha}
        rows = [
            {"name": "XChaCha20-Poly1305 seal, 1 MB", "value": seal, "unit": "MB/s", **base},
            {"name": "XChaCha20-Poly1305 open, 1 MB", "value": open_, "unit": "MB/s", **base},
            {"name": "HPKE key wrap", "value": wraps, "unit": "/s"},
            {"name": "HPKE key unwrap", "value": unwraps, "unit": "/s"},
        ]
        print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
