"""``ncii-client upload FILE.ncii --hub URL``: send an offline bundle; no case secret needed."""

from __future__ import annotations

import argparse
from pathlib import Path

from client.bundle import MAX_BUNDLE_BYTES, Bundle
from client.cli_common import (
    EXIT_CODES_HELP,
    Output,
    add_home_option,
    add_insecure_option,
    guarded,
    open_home,
    printable,
    puzzle_progress,
)
from client.errors import UsageError
from client.hub import HubSession
from client.submitter_command import load_submitter_key

__all__ = ["register"]

_EPILOG = (
    """\
examples:
  ncii-client upload case.ncii --hub https://hub.example.org
  ncii-client upload case.ncii --hub URL --submitter-key helpline.key   (helplines only)

Uploading the same bundle twice is safe. A bundle must reach the hub within its time window
(30 days after signing by default); after that, sign again with 'submit --out'.

"""
    + EXIT_CODES_HELP
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "upload",
        help="send a signed bundle made with 'submit --out' (from any computer)",
        description="Send the signed fingerprints in a .ncii bundle. The bundle holds only "
        "fingerprints and their signature; this computer needs no case.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bundle", metavar="FILE", help="the .ncii bundle")
    parser.add_argument("--hub", metavar="URL", required=True, help="address of the hub")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--submitter-key",
        type=Path,
        metavar="FILE",
        help="helplines: also sign with this registered submitter key",
    )
    add_insecure_option(parser)
    add_home_option(parser)
    parser.set_defaults(run=guarded(_run))


def _run(args: argparse.Namespace) -> int:
    out = Output(args.json)
    home = open_home(args)
    submitter_key = None
    if args.submitter_key is not None:
        submitter_key = load_submitter_key(args.submitter_key)
    with HubSession(
        args.hub,
        home,
        allow_insecure_http=args.insecure_http,
        puzzle_progress=puzzle_progress(out, True),
    ) as hub:
        hub.submitter_key = submitter_key
        try:
            with open(args.bundle, "rb") as f:
                data = f.read(MAX_BUNDLE_BYTES + 1)
        except OSError as exc:
            raise UsageError(f"cannot read {printable(args.bundle)} ({exc.strerror})") from None
        bundle = Bundle.decode(data)
        hub.connect()
        result = hub.upload(bundle)
    out.data(
        {
            "hub": hub.url,
            "case_id": bundle.case_id,
            "sent": len(result.entries),
            "held_for_review": result.held,
            "entries": [e.entry_id for e in result.entries],
        }
    )
    out.say(
        f"Sent. The hub holds {len(result.entries)} fingerprint(s) for case {bundle.case_id}. "
        "The case holder can fetch receipts with 'ncii-client receipts fetch --hub URL'."
    )
    if result.held:
        out.say(
            f"{result.held} of them are held for review by the hub's operator before they go "
            "to the public log and to partners; 'ncii-client status' shows when they are."
        )
    return 0
