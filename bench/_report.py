"""Shared by bench/bench_*.py: the run-mode flags and the ``--json`` rows of bench/README.md.

Kept here so every script spells the convention the same way (run_all.py recognises a script
that calls ``add_mode_flags`` as supporting ``--quick``, ``--smoke`` and ``--json``).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any


def add_mode_flags(parser: argparse.ArgumentParser, *, smoke: str, quick: str, full: str) -> None:
    """``--smoke`` / ``--quick`` / ``--full`` (one of them; ``--full`` is the default) and
    ``--json``; each help text says what that mode measures in this script."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--smoke", action="store_true", help=f"seconds, for CI: {smoke}")
    group.add_argument("--quick", action="store_true", help=f"minutes at most: {quick}")
    group.add_argument("--full", action="store_true", help=f"the default: {full}")
    parser.add_argument(
        "--json", action="store_true", help="also print the figures as JSON rows (last line)"
    )


def mode_of(args: argparse.Namespace) -> str:
    """One of "smoke", "quick" or "full"."""
    return "smoke" if args.smoke else "quick" if args.quick else "full"


def _number(value: float | None) -> float | None:
    """JSON has no NaN or infinity: a figure that could not be measured becomes null (n/a)."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


class Rows:
    """The figures of one run, each beside its same-run baseline, for ``--json``."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        name: str,
        value: float | None,
        unit: str,
        baseline_name: str | None = None,
        baseline_value: float | None = None,
        *,
        ratio: float | None = None,
        aim: str | None = None,
        met: bool | None = None,
    ) -> None:
        """One row; ``value`` None means not measurable here (shown as n/a). ``ratio`` is
        given only when it is not ``value / baseline_value`` (run_all computes that one)."""
        row: dict[str, Any] = {"name": name, "value": _number(value), "unit": unit}
        if baseline_name is not None:
            row["baseline_name"] = baseline_name
            row["baseline_value"] = _number(baseline_value)
        if ratio is not None:
            row["ratio"] = _number(ratio)
        if aim is not None:
            row["aim"] = aim
            if met is not None and row["value"] is not None:
                row["met"] = bool(met)
        self.rows.append(row)

    def print_json(self) -> None:
        """The convention's last stdout line."""
        print(json.dumps({"rows": self.rows}), flush=True)
