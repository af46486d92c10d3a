"""Benchmark: the case puzzle (specs/case-puzzle.md): solve time per difficulty, check cost.

Prints each figure beside a baseline measured in the same run:

- the hub's whole check of a solution (parse, HMAC, epoch, one scrypt) in microseconds, beside
  one raw SHA-256 of 64 bytes (hashlib); a forged challenge is refused before scrypt (HMAC
  only), so its cost is shown too;
- the mean solve time at each difficulty (measured on fresh case keys), beside the expected
  time 2**difficulty x one scrypt evaluation measured here; difficulties too slow to measure
  in the mode are given as that expectation only;
- one scrypt evaluation of web/puzzle.js (vendored noble, in Node) when ``node`` is installed,
  beside hashlib's: what a browser pays per try (a phone is slower again).

    .venv/bin/python bench/bench_puzzle.py            # difficulty 0-8 measured (~2-4 min)
    .venv/bin/python bench/bench_puzzle.py --quick    # difficulty 0-5 measured
    .venv/bin/python bench/bench_puzzle.py --smoke    # tiny scrypt, difficulty 0-2 (CI)

``--json`` adds the rows of bench/README.md's convention as the last line of stdout.
Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _report import Rows, add_mode_flags, mode_of

from crypto import puzzle
from crypto.errors import PuzzleInvalidError
from hub.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
RAW = "raw SHA-256 (64 B, hashlib)"
KEY = puzzle.challenge_key(b"bench master key for the case puzzle!")


@dataclass(frozen=True)
class Plan:
    log2_n: int
    r: int
    measured: int  # difficulties 0..measured are solved for real
    solves: int  # fresh case keys per measured difficulty
    seconds: float  # per timing loop


DEFAULTS = Settings()
DEFAULT_LOG2_N = DEFAULTS.puzzle_scrypt_n.bit_length() - 1
PLANS = {
    "smoke": Plan(4, 1, 2, 3, 0.05),
    "quick": Plan(DEFAULT_LOG2_N, DEFAULTS.puzzle_scrypt_r, 5, 8, 0.5),
    "full": Plan(DEFAULT_LOG2_N, DEFAULTS.puzzle_scrypt_r, 8, 12, 2.0),
}


def per_call(fn: Callable[[], object], seconds: float) -> float:
    """Median seconds per call over a few timed loops of about ``seconds`` each."""
    fn()
    samples = []
    for _ in range(3):
        n, began = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - began
            if elapsed >= seconds / 3:
                break
        samples.append(elapsed / n)
    return statistics.median(samples)


def node_scrypt_seconds(log2_n: int, r: int) -> float | None:
    """Seconds per web/puzzle.js work() in Node, or None without node."""
    node = shutil.which("node")
    if node is None:
        return None
    script = f"""
import {{ parseChallenge, work }} from {json.dumps(str(ROOT / "web" / "puzzle.js"))};
const bytes = new Uint8Array(29); bytes[0] = 1; bytes[10] = {log2_n}; bytes[11] = {r};
bytes[12] = 1;
const c = parseChallenge(bytes); const key = new Uint8Array(32);
work(c, key, 0);
let n = 0; const t = performance.now();
while (performance.now() - t < 1000 || n < 3) {{ work(c, key, n); n++; }}
console.log((performance.now() - t) / n / 1000);
"""
    done = subprocess.run(
        [node, "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return None
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_mode_flags(
        parser,
        smoke="scrypt N=16 r=1, difficulty 0-2",
        quick="hub defaults, difficulty 0-5 solved",
        full="hub defaults, difficulty 0-8 solved",
    )
    args = parser.parse_args()
    plan = PLANS[mode_of(args)]
    rows = Rows()
    data = os.urandom(64)
    raw = per_call(lambda: hashlib.sha256(data).digest(), plan.seconds)
    print(f"{RAW}: {raw * 1e6:.2f} us", flush=True)

    params = puzzle.PuzzleParams(0, plan.log2_n, plan.r, 1)
    print(f"scrypt N={params.n} r={params.r} p=1 ({params.memory >> 10} KiB per try)", flush=True)
    case_key = os.urandom(32)
    challenge = puzzle.issue_challenge(KEY, 1000, params)
    header = puzzle.encode_solution(challenge, puzzle.solve(challenge, case_key))
    verify = per_call(lambda: puzzle.verify(KEY, header, case_key, 1000), plan.seconds)
    one_try = per_call(lambda: puzzle.work(challenge, case_key, 1), plan.seconds)
    forged = puzzle.encode_solution(puzzle.Challenge(1000, params, bytes(16)), 0)

    def refuse_forged() -> None:
        try:
            puzzle.verify(KEY, forged, case_key, 1000)
        except PuzzleInvalidError:
            pass

    reject = per_call(refuse_forged, plan.seconds)
    print(f"hub check of a solution: {verify * 1e6:.0f} us ({verify / raw:.0f} raw hashes)")
    print(f"hub refusal of a forged challenge: {reject * 1e6:.1f} us")
    rows.add("hub check of a solution", verify * 1e6, "us", RAW, raw * 1e6)
    rows.add("hub refusal of a forged challenge (no scrypt)", reject * 1e6, "us", RAW, raw * 1e6)

    node = node_scrypt_seconds(plan.log2_n, plan.r)
    if node is not None:
        print(f"one try in Node (web/puzzle.js): {node * 1e3:.1f} ms, hashlib {one_try * 1e3:.1f}")
    rows.add(
        "one try, web/puzzle.js in Node",
        None if node is None else node * 1e3,
        "ms",
        "one try, hashlib",
        one_try * 1e3,
    )

    for difficulty in range(0, max(plan.measured, DEFAULTS.puzzle_max_difficulty) + 1):
        expected = (1 << difficulty) * one_try
        label = f"solve at difficulty {difficulty}"
        if difficulty > plan.measured:
            print(f"{label}: expected {expected:.2f} s (2^{difficulty} tries, not measured)")
            continue
        timed = []
        for i in range(plan.solves):
            at = puzzle.PuzzleParams(difficulty, params.log2_n, params.r, params.p)
            c = puzzle.issue_challenge(KEY, 2000 + i, at)
            key = os.urandom(32)
            began = time.perf_counter()
            puzzle.solve(c, key)
            timed.append(time.perf_counter() - began)
        mean = statistics.fmean(timed)
        print(
            f"{label}: mean {mean:.3f} s over {plan.solves} keys "
            f"(expected {expected:.3f} s), max {max(timed):.3f} s",
            flush=True,
        )
        print(f"  difficulty {difficulty} done", file=sys.stderr, flush=True)
        rows.add(
            f"{label} (mean of {plan.solves})", mean * 1e3, "ms", "2^d x one try", expected * 1e3
        )
    if args.json:
        rows.print_json()


if __name__ == "__main__":
    main()
