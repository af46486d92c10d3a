"""``ncii-client status``: what the hub holds for the case (a query signed by the case key)."""

from __future__ import annotations

import argparse
from dataclasses import asdict

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
from client.hub import CaseStatus, HubSession

__all__ = ["register", "show_status"]

_EPILOG = (
    """\
examples:
  ncii-client status                        the case's entries at the hub it was sent to
  ncii-client status --hub URL --case ID
  ncii-client status --json                 everything, including your own fingerprints

"""
    + EXIT_CODES_HELP
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="what the hub holds for your case: entries, log positions, withdrawals",
        description="Ask the hub (with a request signed by your case key) what it holds.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print JSON (includes your hashes)")
    add_hub_option(parser)
    add_case_option(parser)
    add_home_option(parser)
    parser.set_defaults(run=guarded(_run))


def show_status(status: CaseStatus, hub_url: str, out: Output) -> None:
    """The human summary of a status answer (no hash values)."""
    additions = status.additions
    withdrawn = sum(1 for e in additions if e.withdrawn)
    in_log = sum(1 for e in additions if e.state == "integrated")
    held = sum(1 for e in additions if e.state == "held" and not e.withdrawn)
    rejected = sum(1 for e in additions if e.state == "rejected")
    out.say(
        f"Case {status.case_id} at {hub_url}: {len(additions)} fingerprint(s), "
        f"{in_log} in the public log, {withdrawn} withdrawn."
    )
    if held:
        out.say(
            f"{held} fingerprint(s) are held for review: the hub keeps them safely but has not "
            "put them in the public log or sent them to partners yet. A person who runs the hub "
            "looks at how much was sent (never at your pictures) and then releases them. "
            "Nothing to do; check again later."
        )
    if rejected:
        out.say(
            f"{rejected} fingerprint(s) were not accepted after review and were deleted from "
            "the hub. If this is a mistake, contact the helpline."
        )
    if status.withdrawn:
        out.say("The whole case is withdrawn: partners delete its fingerprints when they sync.")
    for e in status.entries:
        where = {"held": "held for review", "rejected": "not accepted"}.get(
            e.state, f"log index {e.log_index}" if e.log_index is not None else "pending"
        )
        if e.kind == "addition":
            state = "withdrawn" if e.withdrawn else "active"
            partners = f", received by {e.partners} partner(s)" if e.partners is not None else ""
            out.say(f"  {e.entry_id}  {where:<16} {state}{partners}")
        else:
            out.say(f"  {e.entry_id}  {where:<16} withdrawal of {e.withdraws}")


def _run(args: argparse.Namespace) -> int:
    out = Output(args.json)
    home = open_home(args)
    case_id = home.resolve_case(args.case)
    hub_url = resolve_hub(args, home, case_id)
    with HubSession(hub_url, home, allow_insecure_http=args.insecure_http) as hub:
        status = hub.status(case_id)
        out.data(
            {
                "hub": hub.url,
                "case_id": status.case_id,
                "withdrawn": status.withdrawn,
                "checkpoint_size": status.checkpoint_size,
                "entries": [asdict(e) for e in status.entries],
            }
        )
        show_status(status, hub.url, out)
    return 0
