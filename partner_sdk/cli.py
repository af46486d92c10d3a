"""``ncii-partner``: create partner keys, sync the verified feed, show the local store.

Exit status: the one table of all four command lines (README.md "Exit codes", :data:`EXIT_CODES`);
for this tool (specs/partner-store.md section 5): 1 verification failure (nothing of the bad
batch applied, last good state kept), or the feed lagged the verified checkpoint for longer
than --lag-grace (FeedLagError: what was delivered is applied); 2 usage (arguments, keys, store
of another log); 3 hub unreachable (network, 5xx); 4 hub refused (401/403/409, e.g.
partner_revoked); 5 local store error.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from crypto.urlredact import redact_url
from partner_sdk.defences import (
    DEFAULT_FLOOD_LIMIT,
    DEFAULT_FLOOD_WINDOW,
    Defences,
    MarkState,
    read_summary,
)
from partner_sdk.errors import FeedLagError, PartnerError, UsageError
from partner_sdk.keys import DEFAULT_DIR, init_partner, public_json
from partner_sdk.match_command import add_match_parser, run_match
from partner_sdk.store import Store
from partner_sdk.sync import (
    DEFAULT_LAG_GRACE,
    MAX_LAG_GRACE,
    STORE_FILE,
    Partner,
    SyncSummary,
    status_of,
)

__all__ = ["main"]

EXAMPLES = """\
examples:
  ncii-partner init --name examplecorp        # keys in ./ncii-partner-data; send the printed JSON
  ncii-partner init --name examplecorp --json # the same, with the folder and file names
  ncii-partner sync --hub https://hub.example.org --log-key 'hub.example.org/ncii+6d0d7cb7+AQv8...'
  ncii-partner sync --json                    # hub and key are remembered after the first sync
  ncii-partner sync --witness 'w1.example+1c2a7f4e+BGr...' --witness 'w2...' --quorum 2
                                              # witness policy, kept in witness-policy.json
  ncii-partner sync --follow --log-format json # daemon: wakes as the hub seals, alerts and
                                              # exits 1 on any verification failure
  ncii-partner status --json
  ncii-partner match upload.jpg clip.mp4 --json   # local lookup, no network
  ncii-partner serve --port 8765              # local match service on 127.0.0.1
  ncii-partner serve --token-file match.token --operator-token-file ops.token  # ops reads /stats
  ncii-partner allow add meme.jpg --note 'office meme'   # never match this picture
  ncii-partner allow add pdq:f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22
  ncii-partner allow list --json
  ncii-partner allow remove 3
  ncii-partner review false-positive 1234     # the candidate at log index 1234 is benign
  ncii-partner review confirm 1234 --note 'ticket 88'
  ncii-partner review release 1234            # lift a flood quarantine
  ncii-partner review list --json
  curl -H 'X-NCII-Match: 1' -H 'Content-Type: application/octet-stream' \\
       --data-binary @upload.jpg http://127.0.0.1:8765/v1/match/file
"""

EXIT_CODES = """\
exit status (the same for ncii-client, ncii-hub, ncii-partner and ncii-audit):
  0    done
  1    something did not verify, or failed: an alert, a file refused (see the message)
  2    wrong usage or bad input: fix the command and run it again
  3    the hub, log or witness could not be reached or checked: nothing is lost, try later
  4    the hub or witness answered and refused the request (see the message)
  5    a local file or data folder could not be read or written
  130  interrupted (Ctrl-C)
  143  stopped by SIGTERM before it finished (a server or monitor stops with 0)
  141  the output was closed early (for example by | head)
"""
"""The exit-code table, word for word the same in all four command lines (README "Exit codes")."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ncii-partner",
        description="Receive, verify and store the NCII hub's hash feed.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create partner keys and print the public part")
    init.add_argument("--name", default="partner", help="partner name (a-z 0-9 . _ -)")
    sync = sub.add_parser("sync", help="fetch, verify and apply new batches")
    sync.add_argument("--hub", help="hub URL (remembered)")
    sync.add_argument("--log-key", help="the log's verifier key (remembered; pin it!)")
    sync.add_argument(
        "--witness",
        action="append",
        metavar="VKEY",
        help="a witness's cosignature/v1 verifier key; may repeat (remembered with --quorum)",
    )
    sync.add_argument(
        "--quorum",
        type=int,
        help="how many --witness keys must cosign each checkpoint (default: all of them)",
    )
    sync.add_argument(
        "--quorum-wait",
        type=float,
        default=5.0,
        help="seconds to wait for cosignatures on a new checkpoint before refusing (default 5)",
    )
    sync.add_argument(
        "--lag-grace",
        type=float,
        default=DEFAULT_LAG_GRACE,
        metavar="SECONDS",
        help="exit 1 (FeedLagError) once the feed has lagged the verified checkpoint for "
        f"longer than this; a hub still sealing catches up well within it "
        f"(default {DEFAULT_LAG_GRACE:g})",
    )
    sync.add_argument(
        "--follow",
        action="store_true",
        help="keep running: wait for new batches (long poll), sync each at once, retry a "
        "hub that cannot be reached with growing pauses; exit 1 with an ALERT log line on "
        "any verification failure; SIGTERM stops it cleanly (exit 0)",
    )
    sync.add_argument(
        "--wait",
        type=int,
        default=30,
        metavar="SECONDS",
        help="with --follow: seconds each long poll may wait at the hub (1..45, default 30)",
    )
    sync.add_argument(
        "--max-backoff",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="with --follow: longest pause between retries (1..3600, default 60)",
    )
    status = sub.add_parser("status", help="store size, cursor and trusted checkpoint")
    add_match_parser(sub)
    serve = sub.add_parser(
        "serve",
        help="local HTTP match service for upload pipelines",
        description="Callers send X-NCII-Match: 1 and a JSON or raw-bytes Content-Type;\n"
        "see specs/matching.md section 6.\n\n"
        "/healthz and /readyz need no token and say only alive/ready. /stats and /metrics\n"
        "show the defences' counters, which would tell a caller that a suppressed entry was\n"
        "near its query: they need the operator token (--operator-token-file), never the\n"
        "match token. Without an operator token they answer only direct loopback callers\n"
        "(loopback peer and Host, no forwarding header), and no one when --token-file is set.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name callers may use besides localhost, 127.0.0.1, [::1]; may repeat",
    )
    serve.add_argument(
        "--token-file",
        type=Path,
        help="file (mode 0600) holding a bearer token every request must send",
    )
    serve.add_argument(
        "--operator-token-file",
        type=Path,
        help="file (mode 0600) holding a different bearer token that alone opens /stats and "
        "/metrics (they reveal the defences' counters); without it they answer only direct "
        "loopback callers, and none at all when --token-file is set",
    )
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (needs --token-file; put TLS in front)",
    )
    serve.add_argument(
        "--threshold", type=int, help="default PDQ distance (default 31, at most --max-threshold)"
    )
    serve.add_argument(
        "--max-threshold",
        type=int,
        default=31,
        help="largest threshold a caller may ask for (default 31, at most 64)",
    )
    serve.add_argument("--rotations", action="store_true", help="match rotated/flipped images")
    serve.add_argument("--poll", type=float, default=1.0, help="seconds between store checks")
    serve.add_argument(
        "--max-concurrent", type=int, default=4, help="matching requests at once (default 4)"
    )
    serve.add_argument(
        "--max-pixels",
        type=int,
        default=50_000_000,
        help="decoded pixels per picture or video frame (default 50,000,000)",
    )
    serve.add_argument(
        "--pixel-budget",
        type=int,
        default=100_000_000,
        help="decoded pixels across concurrent requests (default 100,000,000)",
    )
    serve.add_argument(
        "--busy-wait",
        type=float,
        default=1.0,
        help="seconds a request waits for a slot or pixels before 503 (default 1)",
    )
    serve.add_argument(
        "--max-connections", type=int, default=64, help="open connections (default 64)"
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        help="seconds for a request's headers to arrive (default 10)",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=60.0,
        help="seconds for a request's body to arrive (default 60)",
    )
    for p in (sub.choices["match"], serve):
        p.add_argument(
            "--flood-limit",
            type=int,
            default=DEFAULT_FLOOD_LIMIT,
            metavar="N",
            help="quarantine a stored entry that matches more than N distinct uploads within "
            f"--flood-window (default {DEFAULT_FLOOD_LIMIT}; 0 turns quarantine off)",
        )
        p.add_argument(
            "--flood-window",
            type=float,
            default=DEFAULT_FLOOD_WINDOW,
            metavar="SECONDS",
            help=f"the window of --flood-limit (default {DEFAULT_FLOOD_WINDOW:g}, one day)",
        )
    defence_parsers = _add_defence_parsers(sub)
    for p in (init, sync, status, sub.choices["match"], serve, *defence_parsers):
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="partner data directory")
    for p in (init, sync, status, *defence_parsers):
        p.add_argument("--json", action="store_true", help="print JSON")
    for p in (sync, serve):
        p.add_argument(
            "--log-format",
            choices=("text", "json"),
            default="text",
            help="stderr as text, or one JSON log object per line for a journal (default text)",
        )
    return _with_exit_codes(parser)


ALLOW_EXAMPLES = """\
The allow list (a negative bank) holds the platform's own known-benign content: a stored
entry within the match distance of an allow-listed hash is never returned as a candidate.
A file is hashed here (MD5, SHA-256, and PDQ for a picture or vPDQ for a video); a hash is
pdq:HEX, md5:HEX or sha256:HEX (bare hex: 64 digits PDQ, 32 MD5). Values are kept only in
DIR/defences.sqlite3 (0600), never printed, logged or sent to the hub.

examples:
  ncii-partner allow add meme.jpg logo.png --note 'brand assets'
  ncii-partner allow add pdq:f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22
  ncii-partner allow add sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
  ncii-partner allow list --json
  ncii-partner allow remove 3 4
"""

REVIEW_EXAMPLES = """\
Review records are local: the hub never learns a match. REF is the candidate's log index
(the "log_index" of 'ncii-partner match' and of the match service's answers).
  confirm         it is what the entry says: keep matching, never quarantine automatically
  false-positive  it is benign: this entry no longer matches here (survives syncs; a
                  withdrawal still erases the entry)
  release         lift a flood quarantine: match again, never quarantine again
  clear           forget the record (a quarantine too: counting starts afresh)

examples:
  ncii-partner review false-positive 1234 --note 'ticket 88: a stock photo'
  ncii-partner review confirm 1235
  ncii-partner review release 977
  ncii-partner review clear 1234
  ncii-partner review list --state quarantined --json
"""


def _add_defence_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> list[argparse.ArgumentParser]:
    """``allow add|list|remove`` and ``review confirm|false-positive|release|clear|list``."""
    raw = argparse.RawDescriptionHelpFormatter
    allow = sub.add_parser(
        "allow",
        help="the local allow list of known-benign files and hashes",
        description=ALLOW_EXAMPLES.partition("\nexamples:")[0],
        epilog="examples:" + ALLOW_EXAMPLES.partition("\nexamples:")[2],
        formatter_class=raw,
    )
    allow_sub = allow.add_subparsers(dest="action", required=True)
    add = allow_sub.add_parser("add", help="allow-list files or hashes")
    add.add_argument("items", nargs="+", metavar="FILE|HASH")
    add.add_argument("--note", help="your own note (at most 200 characters)")
    allow_sub.add_parser("list", help="allow-list items (ids and kinds, never values)")
    remove = allow_sub.add_parser("remove", help="remove allow-list items by id")
    remove.add_argument("ids", nargs="+", type=int, metavar="ID")
    review = sub.add_parser(
        "review",
        help="local review records: confirm, false-positive, release a quarantine",
        description=REVIEW_EXAMPLES.partition("\nexamples:")[0],
        epilog="examples:" + REVIEW_EXAMPLES.partition("\nexamples:")[2],
        formatter_class=raw,
    )
    review_sub = review.add_subparsers(dest="action", required=True)
    marks = []
    for name, text in (
        ("confirm", "the candidate is what the entry says"),
        ("false-positive", "the candidate is benign: stop matching this entry here"),
        ("release", "lift a flood quarantine"),
        ("clear", "forget the review record"),
    ):
        p = review_sub.add_parser(name, help=text)
        p.add_argument("refs", nargs="+", type=int, metavar="REF", help="log index")
        if name != "clear":
            p.add_argument("--note", help="your own note (at most 200 characters)")
        marks.append(p)
    listing = review_sub.add_parser("list", help="review records and quarantined entries")
    listing.add_argument("--state", choices=[s.value for s in MarkState])
    return [
        add,
        allow_sub.choices["list"],
        remove,
        *marks,
        listing,
    ]


def _run_allow(args: argparse.Namespace) -> int:
    with Defences(args.dir) as defences:
        if args.action == "add":
            added = []
            for item in args.items:
                path = Path(item)
                if path.is_file():
                    added.append(defences.allow_file(path, args.note))
                else:
                    added.append(defences.allow_hash(item, args.note))
            for entry, source in zip(added, args.items, strict=True):
                if args.json:
                    print(json.dumps({"v": 1, "added": entry.to_json()}))
                    continue
                what = source if entry.source == "file" else f"a {entry.algorithms[0]} hash"
                extra = "" if entry.error is None else f" (not perceptually hashed: {entry.error})"
                print(
                    f"allow-list item {entry.id}: {what}, {entry.hashes} hash(es) "
                    f"({', '.join(entry.algorithms)}){extra}"
                )
            return 0
        if args.action == "remove":
            for item in args.ids:
                defences.allow_remove(item)
            if args.json:
                print(json.dumps({"v": 1, "removed": args.ids}))
            else:
                print(f"removed allow-list item(s) {', '.join(map(str, args.ids))}")
            return 0
        items = defences.allow_items()
        if args.json:
            print(json.dumps({"v": 1, "items": [i.to_json() for i in items]}))
            return 0
        if not items:
            print("the allow list is empty")
        for i in items:
            note = f"  note: {i.note}" if i.note else ""
            print(
                f"{i.id}  {i.source} ({i.kind})  {', '.join(i.algorithms)}  {i.hashes} hash(es)"
                f"  added {_when(i.added_at)}{note}"
            )
        return 0


def _run_review(args: argparse.Namespace) -> int:
    with Defences(args.dir) as defences:
        if args.action == "list":
            state = None if args.state is None else MarkState(args.state)
            found = defences.marks(state)
            if args.json:
                print(json.dumps({"v": 1, "records": [m.to_json() for m in found]}))
                return 0
            if not found:
                print("no review records")
            for m in found:
                extra = "" if m.distinct is None else f"  ~{m.distinct} distinct uploads"
                note = f"  note: {m.note}" if m.note else ""
                print(
                    f"log index {m.log_index}  {m.state.value}  since {_when(m.since)}{extra}{note}"
                )
            return 0
        done: list[dict[str, Any]] = []
        for ref in args.refs:
            if args.action == "clear":
                defences.clear(ref)
                done.append({"log_index": ref, "state": None})
                continue
            act = {
                "confirm": defences.confirm,
                "false-positive": defences.false_positive,
                "release": defences.release,
            }[args.action]
            done.append(act(ref, args.note).to_json())
        if args.json:
            print(json.dumps({"v": 1, "records": done}))
        else:
            for d in done:
                text = str(d["state"] or "cleared").replace("_", " ")
                print(f"log index {d['log_index']}: {text}")
        return 0


def _when(seconds: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _with_exit_codes(parser: argparse.ArgumentParser, pool: str = "") -> argparse.ArgumentParser:
    """Give ``parser`` and every subcommand under it examples of itself (its own, else the
    lines of its parents' examples that start with its name) and the exit-code table."""
    epilog = parser.epilog or ""
    pool += "\n" + epilog
    if "examples:" not in epilog and "start here:" not in epilog:
        mine = [line for line in pool.splitlines() if line.startswith(f"  {parser.prog} ")]
        if mine:
            epilog = "examples:\n" + "\n".join(dict.fromkeys(mine)) + "\n\n" + epilog
    if EXIT_CODES not in epilog:
        epilog = epilog.rstrip("\n") + "\n\n" + EXIT_CODES
    parser.epilog = epilog.lstrip("\n")
    kind = parser.formatter_class
    if not (isinstance(kind, type) and issubclass(kind, argparse.RawDescriptionHelpFormatter)):
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _with_exit_codes(child, pool)
    return parser


_JSON_LOGS = False
"""Set by ``--log-format json``: stderr messages become JSON log lines."""


def _err(message: str, **fields: object) -> None:
    if _JSON_LOGS:
        logging.getLogger("partner_sdk.cli").warning(message, extra=fields)
    else:
        print(f"ncii-partner: {message}", file=sys.stderr)


def _print_summary(summary: SyncSummary, as_json: bool, lagging: FeedLagError | None) -> None:
    """The sync's result; a feed gap is reported on stderr once it outlived one sync."""
    lag = summary.lag
    if as_json:
        out = summary.to_json()
        if lagging is not None:
            out.update(error=type(lagging).__name__, message=str(lagging))
        print(json.dumps(out))
    else:
        gap = ""
        if summary.behind > 0:
            gap = f"; {summary.behind} logged entries are not in the feed yet"
            if summary.ready_in is not None:
                wait = max(1, math.ceil(summary.ready_in))
                gap += f", expected within about {wait} s: sync again then"
        print(
            f"synced {summary.entries} entries in {summary.batches} batches "
            f"(+{summary.additions} additions, {summary.withdrawn} withdrawn); cursor "
            f"{summary.cursor} of verified checkpoint {summary.checkpoint_size}{gap}"
        )
    if _JSON_LOGS:
        logging.getLogger("partner_sdk.sync").info("synced", extra=summary.log_fields())
    if lagging is not None:
        _err(
            f"{lagging}; the hub withholds verified entries from this partner",
            error="FeedLagError",
        )
    elif lag is not None and lag.seconds > 0:
        _err(f"warning: {lag.text()}")


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that every cleanup Ctrl-C runs runs for it
    (a sync stopped mid-way keeps its last good state and still erases withdrawn values)."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ncii-partner``; returns the exit status."""
    args = _parser().parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(args: argparse.Namespace) -> int:
    global _JSON_LOGS
    _JSON_LOGS = getattr(args, "log_format", "text") == "json"
    if args.command == "sync" and (_JSON_LOGS or args.follow):
        from partner_sdk.logformat import configure_logging

        configure_logging(args.log_format)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # a closed pipe surfaces in the try below
    try:
        if args.command == "init":
            keys = init_partner(args.dir, args.name)
            if args.json:
                public_file = args.dir / "partner-public.json"
                print(
                    json.dumps(
                        {
                            "v": 1,
                            "name": args.name,
                            "dir": str(args.dir),
                            "public_file": str(public_file),
                            "public": json.loads(public_json(keys)),
                        }
                    )
                )
                return 0
            print(public_json(keys))
            print(
                f"keys written to {args.dir}; send {args.dir / 'partner-public.json'} "
                "to the hub operator",
                file=sys.stderr,
            )
            return 0
        if args.command == "status":
            if not (args.dir / STORE_FILE).exists():
                raise UsageError(f"no store in {args.dir}: run 'ncii-partner sync' first")
            store = Store(args.dir / STORE_FILE)
            try:
                info = status_of(store)
            finally:
                store.close()
            info["defences"] = read_summary(args.dir)
            if info["hub"] is not None:  # shown: never the URL's credentials or query
                info["hub"] = redact_url(info["hub"])
            if args.json:
                print(json.dumps(info))
            else:
                s = info["store"]
                print(f"log {info['origin']} at {info['hub']}")
                print(f"checkpoint size {info['checkpoint_size']}, cursor {info['cursor']}")
                print(
                    f"hashes: {s['pdq']} pdq, {s['md5']} md5, {s['sha256']} sha256, "
                    f"{s['vpdq']} vpdq; {s['withdrawn']} withdrawn, {s['tombstones']} tombstones"
                )
                d = info["defences"]
                if d is not None:
                    held = [str(q["log_index"]) for q in d["quarantined"]]
                    marks = d["marks"]
                    print(
                        f"defences: {len(held)} quarantined"
                        f"{' (log index ' + ', '.join(held[:20]) + ')' if held else ''}, "
                        f"{marks['false_positive']} false positive, {marks['confirmed']} "
                        f"confirmed, {marks['released']} released; allow list "
                        f"{d['allow_items']} item(s)"
                    )
                    if held:
                        print("  review them; 'ncii-partner review release REF' matches again")
            return 0
        if args.command == "allow":
            return _run_allow(args)
        if args.command == "review":
            return _run_review(args)
        if args.command == "match":
            return run_match(args)
        if args.command == "serve":
            from partner_sdk.servelimits import load_token
            from partner_sdk.service import ServiceSettings, serve

            max_threshold = args.max_threshold
            serve(
                ServiceSettings(
                    args.dir,
                    host=args.host,
                    port=args.port,
                    threshold=min(31, max_threshold) if args.threshold is None else args.threshold,
                    max_threshold=max_threshold,
                    rotations=args.rotations,
                    poll_seconds=args.poll,
                    allowed_hosts=tuple(args.allowed_host),
                    token=None if args.token_file is None else load_token(args.token_file),
                    operator_token=None
                    if args.operator_token_file is None
                    else load_token(args.operator_token_file),
                    allow_remote=args.allow_remote,
                    max_concurrent=args.max_concurrent,
                    max_pixels=args.max_pixels,
                    pixel_budget=args.pixel_budget,
                    busy_wait=args.busy_wait,
                    max_connections=args.max_connections,
                    header_timeout=args.header_timeout,
                    body_timeout=args.body_timeout,
                    flood_limit=args.flood_limit,
                    flood_window=args.flood_window,
                ),
                log_format=args.log_format,
            )  # SIGINT: KeyboardInterrupt (130); SIGTERM: returns, a graceful stop (0)
            _err("stopped (SIGTERM)")
            return 0
        if not 0 <= args.quorum_wait <= 600:
            raise UsageError("--quorum-wait must be from 0 to 600 seconds")
        if not 0 <= args.lag_grace <= MAX_LAG_GRACE:
            raise UsageError(f"--lag-grace must be from 0 to {MAX_LAG_GRACE:g} seconds")
        if args.follow and not 1 <= args.wait <= 45:
            raise UsageError("--wait must be from 1 to 45 seconds")
        if args.follow and not 1 <= args.max_backoff <= 3600:
            raise UsageError("--max-backoff must be from 1 to 3600 seconds")
        with Partner(
            args.dir,
            args.hub,
            args.log_key,
            progress=not (args.json or _JSON_LOGS or args.follow),
            witnesses=args.witness,
            quorum=args.quorum,
            quorum_wait=args.quorum_wait,
            lag_grace=args.lag_grace,
        ) as partner:
            if args.follow:
                from partner_sdk.follow import FollowSettings, follow

                def printed(summary: SyncSummary) -> None:
                    if args.json and summary.entries:
                        print(json.dumps(summary.to_json()))

                return follow(
                    partner,
                    FollowSettings(wait=args.wait, max_backoff=args.max_backoff),
                    on_sync=printed,
                )
            try:
                summary = partner.sync()
            except FeedLagError as exc:
                _print_summary(exc.summary, args.json, exc)
                return exc.exit_code
        _print_summary(summary, args.json, None)
        return 0
    except BrokenPipeError:
        # The reader went away (``| head``): quiet the exit-time flush, end as SIGPIPE would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except PartnerError as exc:
        _err(str(exc), error=type(exc).__name__, exit_status=exc.exit_code)
        if getattr(args, "json", False):  # "error": a stable name for programs, not for people
            print(json.dumps({"v": 1, "error": type(exc).__name__, "message": str(exc)}))
        return exc.exit_code
    except _Terminated:  # serve stops gracefully (0); a sync or match had not finished (143)
        _err("stopped (SIGTERM)")
        return 0 if args.command == "serve" else 143
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
