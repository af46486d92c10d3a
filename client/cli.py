"""``ncii-client``: the command line a person (or a helpline on their behalf) runs.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds its parser
and sets ``run`` (a function from the parsed arguments to an exit code). Later subcommands are
added by listing their module's ``register`` in :data:`COMMANDS`; nothing registers itself by
import side effect.

Exit codes (every subcommand): 0 success, 1 some work failed (details on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from client import hash_command
from client.ui import command as ui_command

__all__ = ["COMMANDS", "EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

COMMANDS: tuple[Register, ...] = (hash_command.register, ui_command.register)
"""Subcommand registrars, in the order ``--help`` lists them."""

_DESCRIPTION = """\
Protect intimate images from being shared without consent, without ever sending them anywhere.

This tool computes fingerprints (hashes) of your pictures and videos on this computer. Only the
fingerprints can later be submitted; the files themselves never leave your device.
"""

_EPILOG = """\
start here:
  ncii-client hash ~/Pictures/private       fingerprint every file in a folder
  ncii-client hash --help                   what the output means

Nothing is sent over the network by 'hash'.
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the process arguments), run the subcommand, return its exit code.

    argparse exits with 2 on a usage error, which is our usage exit code too.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except KeyboardInterrupt:
        print("ncii-client: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
