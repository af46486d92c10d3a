"""``ncii-client case new | recover | list``: the person's case, with no account.

``new`` shows the recovery code exactly once; it is never printed again by any command.
``recover`` reads the code from a hidden prompt, or from standard input when that is not a
terminal (or with ``-``), never from the command line by default: arguments are visible to
every user of the computer (``ps``) and stay in the shell's history (issue 12, finding 7).
"""

from __future__ import annotations

import argparse
import getpass
import sys

from client.cli_common import EXIT_CODES_HELP, Output, add_home_option, guarded, open_home
from client.errors import UsageError
from client.store import normalise_hub_url

__all__ = ["register"]

_NEW_ADVICE = """\
Write the recovery code down on paper now and keep it somewhere safe and private.
It is shown only this once and nobody can tell it to you again, not even the helpline.
With it you can check or withdraw what you submit, from any computer:
  ncii-client case recover                  (it asks for the code; it is not shown as you type)
Do not share it: anyone who has it can withdraw your submission.

Next: ncii-client submit FOLDER --hub URL   (only fingerprints are sent, never the pictures)"""

_EPILOG = (
    """\
examples:
  ncii-client case new                      start a case (shows your recovery code once)
  ncii-client case recover                  restore a case on another computer: type the
                                            code when asked (it is not shown)
  ncii-client case recover --hub URL        the same, and remember the hub the case was
                                            sent to
  ncii-client case recover - < code.txt     read the code from standard input (a file, a
                                            password manager: ... | ncii-client case recover -)
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

    recover = sub.add_parser(
        "recover",
        help="restore a case from its recovery code (asked for, not given on the command line)",
        description="Restore a case from its recovery code. The code is asked for at a prompt "
        "that does not show it; when standard input is not a terminal (or with '-') it is read "
        "from there, one line.",
    )
    recover.add_argument(
        "code",
        metavar="-",
        nargs="*",
        help="'-' reads the code from standard input. A code written here still works but is "
        "deprecated: other users of this computer can see it and the shell keeps it in history",
    )
    recover.add_argument(
        "--hub",
        metavar="URL",
        help="address of the hub this case was sent to (remembered, so later commands "
        "need no --hub)",
    )
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


MAX_CODE_INPUT = 1000  # a code is 34 characters; generous for spaces and a pasted line

_ARGUMENT_WARNING = (
    "ncii-client: warning: a recovery code on the command line is deprecated and will stop "
    "working in a later version: other users of this computer can see it while the command "
    "runs (ps), and your shell keeps it in its history (remove it from there). Next time run "
    "'ncii-client case recover' and type the code when asked."
)


def read_recovery_code(words: list[str]) -> str:
    """The recovery code: from the (deprecated) arguments, a hidden prompt, or standard input."""
    if words and words != ["-"]:
        print(_ARGUMENT_WARNING, file=sys.stderr, flush=True)
        return " ".join(words)
    if not words and sys.stdin.isatty():
        try:
            return getpass.getpass("Recovery code (not shown as you type): ")
        except EOFError:
            raise UsageError("no recovery code was typed") from None
    text = sys.stdin.readline(MAX_CODE_INPUT + 1)
    if len(text) > MAX_CODE_INPUT:
        raise UsageError("the first line of standard input is far too long to be a recovery code")
    if not text.strip():
        raise UsageError(
            "no recovery code came on standard input: run 'ncii-client case recover' in a "
            "terminal to be asked for it, or pipe it in (one line)"
        )
    return text.strip()


def _recover(args: argparse.Namespace) -> int:
    home = open_home(args)
    code = read_recovery_code(args.code)
    hub = normalise_hub_url(args.hub) if args.hub else None  # a bad address: before any write
    case_id = home.recover_case(code)
    if hub is None:
        hub = home.remembered_hub(case_id) or next(
            (r.hub for r in home.receipts(case_id, skip_damaged=True)), None
        )
    else:
        home.remember_hub(case_id, hub)
    out = Output(args.json)
    out.data({"case_id": case_id, "hub": hub})
    out.say(f"Case {case_id} is restored on this computer.")
    if hub is None:
        out.say(
            "Check it with: ncii-client status --hub URL   (the address your helpline gave "
            "you; needed only once)"
        )
    else:
        out.say("Check it with: ncii-client status")
    # Its entries (sent from the web page or another computer) are unknown here until then.
    out.say("Get the receipts of what it holds with: ncii-client receipts fetch")
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
