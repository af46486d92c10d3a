"""``ncii-client``: the command line a person (or a helpline on their behalf) runs.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds its parser
and sets ``run`` (a function from the parsed arguments to an exit code). Later subcommands are
added by listing their module's ``register`` in :data:`COMMANDS`; nothing registers itself by
import side effect.

Exit codes (every subcommand): the one table of all four command lines, README.md "Exit codes"
(:data:`client.cli_common.EXIT_CODES_HELP`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from client import (
    case_command,
    hash_command,
    receipts_command,
    status_command,
    submit_command,
    submitter_command,
    upload_command,
    withdraw_command,
)
from client.cli_common import EXIT_CODES_HELP
from client.ui import command as ui_command

__all__ = ["COMMANDS", "EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `yes | head`

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

COMMANDS: tuple[Register, ...] = (
    case_command.register,
    submit_command.register,
    receipts_command.register,
    status_command.register,
    withdraw_command.register,
    upload_command.register,
    hash_command.register,
    ui_command.register,
    submitter_command.register,
)
"""Subcommand registrars, in the order ``--help`` lists them."""

_DESCRIPTION = """\
Protect intimate images from being shared without consent, without ever sending them anywhere.

This tool computes fingerprints (hashes) of your pictures and videos on this computer. Only the
fingerprints can later be submitted; the files themselves never leave your device.
"""

_EPILOG = """\
start here:
  ncii-client case new                      start a case (no account; keep the code it shows)
  ncii-client submit ~/Pictures/private --hub URL --wait
                                            send only the fingerprints, get receipts
  ncii-client receipts verify               check the receipts, offline
  ncii-client status                        what the hub holds for your case
  ncii-client withdraw --all                take everything back
  ncii-client hash ~/Pictures/private       just show the fingerprints (nothing is sent)

"""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="ncii-client",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(subparsers)
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
    if EXIT_CODES_HELP not in epilog:
        epilog = epilog.rstrip("\n") + "\n\n" + EXIT_CODES_HELP
    parser.epilog = epilog.lstrip("\n")
    kind = parser.formatter_class
    if not (isinstance(kind, type) and issubclass(kind, argparse.RawDescriptionHelpFormatter)):
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _with_exit_codes(child, pool)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the process arguments), run the subcommand, return its exit code.

    argparse exits with 2 on a usage error, which is our usage exit code too.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that every cleanup Ctrl-C runs runs for it."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def _main(args: argparse.Namespace) -> int:
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        code = run(args)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at exit
        return code
    except BrokenPipeError:
        # The reader went away: point stdout at devnull so the exit-time flush is quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except _Terminated:  # the job had not finished (ncii-client ui handles its own stop)
        print("ncii-client: stopped (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("ncii-client: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
