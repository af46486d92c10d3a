"""``ncii-client receipts verify | fetch``: keep and check the hub's signed promises.

``verify`` needs no network: each receipt's checkpoint is checked with the log key recorded at
first contact with the hub, and its inclusion proof with crypto.merkle (specs/client-store.md 4).
"""

from __future__ import annotations

import argparse

from client.cli_common import (
    EXIT_CODES_HELP,
    Output,
    add_case_option,
    add_home_option,
    add_hub_option,
    guarded,
    open_home,
    resolve_hub,
)
from client.hub import HubSession
from client.verify import verify_receipts

__all__ = ["register"]

_EPILOG = (
    """\
examples:
  ncii-client receipts fetch                get proofs for entries the log now includes
  ncii-client receipts verify               check every receipt on this computer, offline
  ncii-client receipts verify --json        one JSON object per receipt

A verified receipt proves the hub's log (signed with the key this computer saw first) holds
the entry the hub gave you at that position. It cannot show which fingerprint the entry holds:
that stays sealed with a secret the hub keeps, so that nobody else can test pictures against it.

"""
    + EXIT_CODES_HELP
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "receipts",
        help="fetch and verify proofs that the hub's public log holds your entries",
        description="Receipts are proofs, signed by the hub's log, that your entries are in it.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(title="receipts commands", metavar="ACTION", required=True)
    verify = sub.add_parser("verify", help="check every stored receipt (no network)")
    verify.add_argument("--json", action="store_true", help="print JSON")
    add_case_option(verify)
    add_home_option(verify)
    verify.set_defaults(run=guarded(_verify))
    fetch = sub.add_parser("fetch", help="get proofs for receipts still pending")
    fetch.add_argument("--json", action="store_true", help="print JSON")
    add_hub_option(fetch)
    add_case_option(fetch)
    add_home_option(fetch)
    fetch.set_defaults(run=guarded(_fetch))


def _verify(args: argparse.Namespace) -> int:
    out = Output(args.json)
    home = open_home(args)
    case_id = home.resolve_case(args.case)
    checks = verify_receipts(home, case_id)
    for c in checks:
        out.data(
            {
                "entry_id": c.entry_id,
                "kind": c.kind,
                "log_index": c.log_index,
                "state": c.state,
                "problem": c.problem,
            }
        )
    verified = sum(1 for c in checks if c.state == "verified")
    pending = sum(1 for c in checks if c.state == "pending")
    failed = [c for c in checks if c.state == "failed"]
    if not checks:
        # A case made in the page or recovered here has entries this computer never saw:
        # fetch builds their receipts from the hub's signed status answer.
        out.say(
            f"Case {case_id} has no receipts on this computer yet. If it holds fingerprints "
            "(sent from here, from the web page or from another computer), get their "
            "receipts with: ncii-client receipts fetch"
        )
        return 0
    for c in failed:
        out.problem(f"receipt {c.entry_id} FAILED: {c.problem}")
    out.say(
        f"Case {case_id}: {verified} receipt(s) verified, {pending} pending, {len(failed)} failed."
    )
    if pending:
        out.say("Pending receipts complete with: ncii-client receipts fetch")
    if failed:
        out.say(
            "A failed receipt means the file was changed or the hub's log does not hold what it "
            "promised. Keep the files as they are and tell your helpline."
        )
        return 1
    return 0


def _fetch(args: argparse.Namespace) -> int:
    out = Output(args.json)
    home = open_home(args)
    case_id = home.resolve_case(args.case)
    hub_url = resolve_hub(args, home, case_id)
    with HubSession(hub_url, home, allow_insecure_http=args.insecure_http) as hub:
        summary = hub.fetch_receipts(case_id)
    out.data({"case_id": case_id, "included": summary.included, "pending": summary.pending})
    out.say(f"{summary.included} receipt(s) in the public log, {summary.pending} pending.")
    return 0
