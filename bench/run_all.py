"""Run every bench/bench_*.py and print one table: each figure beside its same-run baseline and
the ratio; the table is also written to bench/results/<date>.md (gitignored).

    .venv/bin/python bench/run_all.py            # quick mode (each script's --quick)
    .venv/bin/python bench/run_all.py --full     # long mode (each script's default sizes)
    .venv/bin/python bench/run_all.py --smoke    # CI: only scripts with --smoke, seconds each

Each script runs as a subprocess with a timeout. Scripts following bench/README.md's
convention (``--json``: last stdout line ``{"rows": [...]}``) give table rows; others give one
row saying so, with their text output kept in the results file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TIMEOUTS = {"smoke": 60.0, "quick": 900.0, "full": 7200.0}


@dataclass
class Result:
    script: str
    status: str  # "ok", "no --json", "no --smoke", "failed (exit N)", "timeout"
    seconds: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""


def supports(source: str, flag: str) -> bool:
    """Whether a script accepts ``flag``: it spells it out, or uses bench/_report.py's flags."""
    return f'"{flag}"' in source or "add_mode_flags(" in source


def run_script(path: Path, mode: str, timeout: float) -> Result:
    source = path.read_text()
    args: list[str] = []
    if mode == "smoke":
        if not supports(source, "--smoke"):
            return Result(path.stem, "no --smoke", 0.0)
        args.append("--smoke")
    elif mode == "quick" and supports(source, "--quick"):
        args.append("--quick")
    has_json = supports(source, "--json")
    if has_json:
        args.append("--json")
    began = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, str(path), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Result(path.stem, f"timeout after {timeout:.0f} s", time.monotonic() - began)
    seconds = time.monotonic() - began
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        return Result(path.stem, f"failed (exit {done.returncode})", seconds, text=tail)
    rows: list[dict[str, Any]] = []
    text_lines = done.stdout.rstrip().splitlines()
    if has_json and text_lines:
        try:
            parsed = json.loads(text_lines[-1])
            rows = [dict(r) for r in parsed["rows"]]
            text_lines = text_lines[:-1]
        except (ValueError, KeyError, TypeError):
            return Result(path.stem, "bad --json output", seconds, text=done.stdout[-2000:])
    status = "ok" if has_json else "no --json"
    return Result(path.stem, status, seconds, rows, "\n".join(text_lines))


def _num(value: object) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "" if value is None else str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def table(results: list[Result]) -> list[str]:
    lines = [
        "| script | figure | value | baseline (same run) | ratio | aim | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if not r.rows:
            lines.append(f"| {r.script} | ({r.status}, {r.seconds:.0f} s) | | | | | |")
            continue
        for row in r.rows:
            value, base = row.get("value"), row.get("baseline_value")
            ratio = row.get("ratio")
            if ratio is None and isinstance(value, int | float) and isinstance(base, int | float):
                ratio = value / base if base else None
            unit = row.get("unit", "")
            shown = f"{_num(value)} {unit}" if value is not None else "n/a"
            baseline = ""
            if row.get("baseline_name"):
                baseline = f"{row['baseline_name']}: " + (
                    f"{_num(base)} {unit}" if base is not None else "n/a"
                )
            met = row.get("met")
            lines.append(
                f"| {r.script} | {row.get('name', '?')} | {shown} | {baseline} | "
                f"{_num(ratio)} | {row.get('aim') or ''} | "
                f"{'' if met is None else ('yes' if met else 'NO')} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--full", action="store_true", help="long mode (default sizes)")
    group.add_argument("--smoke", action="store_true", help="seconds per script (CI smoke)")
    parser.add_argument("--only", action="append", default=[], help="run only this bench_NAME")
    parser.add_argument("--timeout", type=float, help="seconds per script")
    parser.add_argument("--out", type=Path, help="results file (default bench/results/DATE.md)")
    args = parser.parse_args(argv)
    mode = "full" if args.full else "smoke" if args.smoke else "quick"
    timeout = args.timeout or TIMEOUTS[mode]
    scripts = sorted(BENCH.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.stem in args.only or s.stem[6:] in args.only]
    results = []
    for path in scripts:
        print(f"running {path.name} ({mode}) ...", file=sys.stderr, flush=True)
        results.append(run_script(path, mode, timeout))
    now = datetime.datetime.now(datetime.UTC)
    lines = table(results)
    print("\n".join(lines))
    out = args.out or BENCH / "results" / f"{now:%Y-%m-%d-%H%M%S}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    body = [
        f"# bench/run_all.py {mode}, {now:%Y-%m-%d %H:%M} UTC, python {sys.version.split()[0]}",
        "",
    ]
    body += lines
    for r in results:
        if r.text:
            body += ["", f"## {r.script} ({r.status}, {r.seconds:.0f} s)", "", "```", r.text, "```"]
    out.write_text("\n".join(body) + "\n")
    print(f"\nwritten to {out}", file=sys.stderr)
    return 0 if all(not r.status.startswith(("failed", "timeout", "bad")) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
