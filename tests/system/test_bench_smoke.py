"""bench/run_all.py in its quickest mode: every bench script runs with --smoke --json and gives
rows in the table (a figure, its same-run baseline and the ratio), and the results file holds
the same table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cells(row: str) -> list[str]:
    return [c.strip() for c in row.split("|")[1:-1]]


SCRIPTS = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_run_all_smoke(script: str, tmp_path: Path) -> None:
    """One script a test (run_all.py --only), so the suite's workers share them."""
    out = tmp_path / "results.md"
    done = subprocess.run(
        [sys.executable, "bench/run_all.py", "--smoke", "--only", script, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # a browser or a hub included, on a loaded 2-core machine
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [cells(line) for line in done.stdout.splitlines() if line.startswith("| bench_")]
    assert {row[0] for row in rows} == {script}
    # The script gave figures, not a status row such as "(no --smoke, 0 s)".
    assert not [row for row in rows if row[1].startswith("(")]
    with_ratio = [row for row in rows if row[3] and row[4]]
    assert with_ratio, f"{script}: no figure beside a same-run baseline"
    for row in with_ratio:
        assert float(row[4].replace(",", "")) > 0, row
    if script == "bench_feed":
        assert len(rows) == 4 and all("/s" in row[2] for row in rows)
        seal = next(row for row in rows if "seal" in row[1])
        assert 0 < float(seal[4]) < 100  # a figure beside its same-run baseline
    assert out.read_text().count("| bench_") == len(rows)
