"""bench/run_all.py in its quickest mode: every bench script gets a row in the table (figures
for scripts with --smoke/--json, a 'no --smoke' row for the rest), and the results file holds
the same table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_run_all_smoke(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    done = subprocess.run(
        [sys.executable, "bench/run_all.py", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| bench_")]
    scripts = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
    assert sorted({row.split("|")[1].strip() for row in rows}) == scripts
    feed = [row for row in rows if row.startswith("| bench_feed |")]
    assert len(feed) == 4 and all("MB/s" in r or "/s" in r for r in feed)
    seal = next(r for r in feed if "seal" in r)
    ratio = float(seal.split("|")[5])
    assert 0 < ratio < 100  # a figure beside its same-run baseline
    assert out.read_text().count("| bench_") == len(rows)
