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
import os
import sys
from collections.abc import Sequence
from pathlib import Path

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
        description="Callers send X-NCII-Match: 1 and a JSON or raw-bytes Content-Type; "
        "see specs/matching.md section 6.",
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
    for p in (init, sync, status, sub.choices["match"], serve):
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="partner data directory")
    for p in (init, sync, status):
        p.add_argument("--json", action="store_true", help="print JSON")
    for p in (sync, serve):
        p.add_argument(
            "--log-format",
            choices=("text", "json"),
            default="text",
            help="stderr as text, or one JSON log object per line for a journal (default text)",
        )
    return _with_exit_codes(parser)


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
        if lag is not None and lag.seconds == 0:
            gap = f" ({lag.entries} verified entries not sealed by the hub yet)"
        print(
            f"synced {summary.entries} entries in {summary.batches} batches "
            f"(+{summary.additions} additions, {summary.withdrawn} withdrawn); cursor "
            f"{summary.cursor} of verified checkpoint {summary.checkpoint_size}{gap}"
        )
    if _JSON_LOGS:
        logging.getLogger("partner_sdk.sync").info(
            "synced",
            extra={
                "entries": summary.entries,
                "batches": summary.batches,
                "additions": summary.additions,
                "withdrawn": summary.withdrawn,
                "cursor": summary.cursor,
                "checkpoint_size": summary.checkpoint_size,
            },
        )
    if lagging is not None:
        _err(
            f"{lagging}; the hub withholds verified entries from this partner",
            error="FeedLagError",
        )
    elif lag is not None and lag.seconds > 0:
        _err(f"warning: {lag.text()}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ncii-partner``; returns the exit status."""
    global _JSON_LOGS
    args = _parser().parse_args(argv)
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
            return 0
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
                    allow_remote=args.allow_remote,
                    max_concurrent=args.max_concurrent,
                    max_pixels=args.max_pixels,
                    pixel_budget=args.pixel_budget,
                    busy_wait=args.busy_wait,
                    max_connections=args.max_connections,
                    header_timeout=args.header_timeout,
                    body_timeout=args.body_timeout,
                ),
                log_format=args.log_format,
            )
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
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
