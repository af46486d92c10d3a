"""``ncii-partner match FILE...``: hash files locally and print their candidate matches.

No network: only the local store is read (specs/matching.md section 5). Exit status: 0 every
file was checked (matched or not: read the output), 2 usage (no store, unreadable file,
bad threshold), 5 store error, 6 some file could not be hashed perceptually (its MD5/SHA-256
lookups still ran and it is still reported).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hashing import MATCH_THRESHOLD
from partner_sdk.defences import Defences, FloodPolicy
from partner_sdk.matcher import FileResult, Matcher

__all__ = ["EXIT_UNHASHED", "add_match_parser", "print_result", "run_match"]

EXIT_UNHASHED = 6


def add_match_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    match = sub.add_parser(
        "match",
        help="hash files locally and look them up in the store (no network)",
        description="Matches are candidates for human review, not verdicts.",
    )
    match.add_argument("files", nargs="+", type=Path, metavar="FILE")
    match.epilog = (
        "Candidates marked false positive, quarantined, or near an allow-listed hash are not "
        "shown\n(see 'ncii-partner review --help' and 'ncii-partner allow --help')."
    )
    match.add_argument(
        "--threshold",
        type=int,
        default=MATCH_THRESHOLD,
        help=f"PDQ / vPDQ frame distance, inclusive (default {MATCH_THRESHOLD})",
    )
    match.add_argument(
        "--rotations", action="store_true", help="also match rotated or flipped images"
    )
    match.add_argument("--json", action="store_true", help="print one JSON object per file")


def print_result(path: Path, result: FileResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"v": 1, "file": str(path), **result.to_json()}), flush=True)
        return
    head = f"{path}: {result.kind}"
    if result.quality is not None:
        head += f", quality {result.quality}"
    if result.frames is not None:
        head += f", {result.frames} frames"
    if result.error is not None:
        head += f" (not perceptually hashed: {result.error})"
    print(f"{head}: {len(result.matches) or 'no'} candidate match(es)")
    for m in result.matches:
        line = f"  log index {m.log_index}  {m.algorithm}  distance {m.distance}"
        if m.quality is not None:
            line += f"  quality {m.quality}"
        if m.transform is not None:
            line += f"  as {m.transform}"
        if m.query_match_percent is not None:
            line += (
                f"  upload {m.query_match_percent:.1f}% / stored "
                f"{m.candidate_match_percent or 0.0:.1f}% of frames"
            )
        print(line)


def run_match(args: argparse.Namespace) -> int:
    """Build the index from the store once, then match every file in order."""
    status = 0
    policy = FloodPolicy(args.flood_limit, args.flood_window)
    if not (args.dir / "store.sqlite3").is_file():  # before the defences file is created
        Matcher(args.dir)  # raises the usual "run sync first" UsageError
    with (
        Defences(args.dir, flood=policy) as defences,
        Matcher(
            args.dir, threshold=args.threshold, rotations=args.rotations, defences=defences
        ) as matcher,
    ):
        for path in args.files:
            result = matcher.match_file(path)
            print_result(path, result, args.json)
            if result.error is not None:
                status = EXIT_UNHASHED
    sys.stdout.flush()
    return status
