"""``ncii-client withdraw [--all | ENTRY...]``: signed by the case key, confirmed, then shown.

The hub logs a tombstone per entry and deletes the fingerprints it holds; partners delete
theirs when they next sync (specs/submission.md 5).
"""

from __future__ import annotations

import argparse

from client.cli_common import (
    EXIT_CODES_HELP,
    Output,
    add_case_option,
    add_home_option,
    add_hub_option,
    confirm,
    guarded,
    open_home,
    resolve_hub,
)
from client.errors import UsageError
from client.hub import HubSession
from client.status_command import show_status

__all__ = ["register"]

_EPILOG = (
    """\
examples:
  ncii-client withdraw --all                 withdraw the whole case (cannot be undone)
  ncii-client withdraw 0da8fae7c70421fc84d8ed935f003327      one entry (ids: ncii-client status)

"""
    + EXIT_CODES_HELP
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "withdraw",
        help="withdraw some entries or the whole case",
        description="Withdraw fingerprints you sent. The hub deletes them and tells partners "
        "to delete theirs. Withdrawing the whole case also closes it for good.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("entries", nargs="*", metavar="ENTRY", help="entry ids to withdraw")
    parser.add_argument("--all", action="store_true", help="withdraw the whole case")
    parser.add_argument("--yes", action="store_true", help="do not ask before withdrawing")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_hub_option(parser)
    add_case_option(parser)
    add_home_option(parser)
    parser.set_defaults(run=guarded(_run))


def _run(args: argparse.Namespace) -> int:
    if args.all == bool(args.entries):
        raise UsageError("say what to withdraw: --all, or one or more entry ids")
    out = Output(args.json)
    home = open_home(args)
    case_id = home.resolve_case(args.case)
    hub_url = resolve_hub(args, home, case_id)
    with HubSession(hub_url, home, allow_insecure_http=args.insecure_http) as hub:
        hub.connect()
        what = (
            f"all fingerprints of case {case_id}, and close the case"
            if args.all
            else f"{len(args.entries)} entr{'y' if len(args.entries) == 1 else 'ies'}"
        )
        if not confirm(f"Withdraw {what} at {hub.url}? This cannot be undone.", yes=args.yes):
            out.say("Nothing was withdrawn.")
            return 1
        outcome = hub.withdraw(case_id, None if args.all else args.entries)
        count = len(outcome.withdrawn) + len(outcome.held_withdrawn)
        already = len(outcome.already_withdrawn)
        out.say(
            f"Withdrawn: {count} entr{'y' if count == 1 else 'ies'}"
            + (f", {already} already withdrawn" if already else "")
            + ("; the case is closed." if outcome.case_withdrawn else ".")
        )
        status = hub.status(case_id)
        out.data(
            {
                "case_id": case_id,
                "case_withdrawn": outcome.case_withdrawn,
                "withdrawn": [{"entry_id": e, "tombstone_id": t} for e, t in outcome.withdrawn],
                "already_withdrawn": list(outcome.already_withdrawn),
                "held_withdrawn": list(outcome.held_withdrawn),
            }
        )
        show_status(status, hub.url, out)
    return 0
