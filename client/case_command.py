"""``ncii-client case new | recover CODE | list``: the person's case, with no account.

``new`` shows the recovery code exactly once; it is never printed again by any command.
"""

from __future__ import annotations

import argparse

from client.cli_common import EXIT_CODES_HELP, Output, add_home_option, guarded, open_home

__all__ = ["register"]

_NEW_ADVICE = """\
Write the recovery code down on paper now and keep it somewhere safe and private.
It is shown only this once and nobody can tell it to you again, not even the helpline.
With it you can check or withdraw what you submit, from any computer:
  ncii-client case recover CODE
Do not share it: anyone who has it can withdraw your submission.

Next: ncii-client submit FOLDER --hub URL   (only fingerprints are sent, never the pictures)"""

_EPILOG = (
    """\
examples:
  ncii-client case new                      start a case (shows your recovery code once)
  ncii-client case recover 3BX4-NCF3-...    restore a case on another computer
  ncii-client case list                     the cases kept on this computer

"""
    + EXIT_CODES_HELP
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``case`` and its three subcommands."""
    parser = subparsers.add_parser(
        "case",
        help="start, restore or list your cases (no account, no e-mail)",
        description="A case groups what you submit. It has an id (not secret) and a recovery "
        "code (secret: it lets you check and withdraw your submission).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(title="case commands", metavar="ACTION", required=True)

    new = sub.add_parser("new", help="start a new case and show its recovery code once")
    add_home_option(new)
    new.add_argument("--json", action="store_true", help="print the id and code as JSON")
    new.set_defaults(run=guarded(_new))

    recover = sub.add_parser("recover", help="restore a case from its recovery code")
    recover.add_argument("code", metavar="CODE", nargs="+", help="the recovery code (any case)")
    add_home_option(recover)
    recover.add_argument("--json", action="store_true", help="print the case id as JSON")
    recover.set_defaults(run=guarded(_recover))

    lister = sub.add_parser("list", help="list the cases kept on this computer")
    add_home_option(lister)
    lister.add_argument("--json", action="store_true", help="print JSON")
    lister.set_defaults(run=guarded(_list))


def _new(args: argparse.Namespace) -> int:
    home = open_home(args)
    new = home.create_case()
    out = Output(args.json)
    if args.json:
        out.data({"case_id": new.case_id, "recovery_code": new.recovery_code})
        out.say("Keep the recovery code safe: it is shown only this once.")
        return 0
    out.say("Your case was created.\n")
    out.say(f"  Case id:        {new.case_id}")
    out.say(f"  Recovery code:  {new.recovery_code}\n")
    out.say(_NEW_ADVICE)
    return 0


def _recover(args: argparse.Namespace) -> int:
    home = open_home(args)
    case_id = home.recover_case(" ".join(args.code))
    out = Output(args.json)
    out.data({"case_id": case_id})
    out.say(f"Case {case_id} is restored on this computer.")
    out.say("Check it with: ncii-client status --hub URL")
    return 0


def _list(args: argparse.Namespace) -> int:
    home = open_home(args)
    cases = home.list_cases()
    out = Output(args.json)
    out.data(
        [
            {
                "case_id": c.case_id,
                "entries": c.entries,
                "included": c.included,
                "hubs": list(c.hubs),
            }
            for c in cases
        ]
    )
    if not cases:
        out.say("No case on this computer yet. Start one with: ncii-client case new")
    for c in cases:
        where = ", ".join(c.hubs) if c.hubs else "not sent yet"
        out.say(f"{c.case_id}  {c.entries} receipt(s), {c.included} in the log  ({where})")
    return 0
