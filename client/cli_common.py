"""What every case/submit/receipts/status/withdraw/upload subcommand shares.

``--home``, ``--case``, ``--hub`` options; turning library errors into a plain message and the
documented exit code (0 ok, 1 something failed, 2 usage, 3 hub unreachable or refused); the
yes/no question; JSON output; a progress bar on a terminal only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from tqdm import tqdm

from client.errors import EXIT_USAGE, ClientError, UsageError
from client.store import ClientHome, normalise_hub_url
from crypto.errors import CryptoError, RecoveryCodeError

__all__ = [
    "Output",
    "add_case_option",
    "add_home_option",
    "add_hub_option",
    "add_insecure_option",
    "confirm",
    "guarded",
    "open_home",
    "progress_bar",
    "resolve_hub",
]

Command = Callable[[argparse.Namespace], int]

EXIT_CODES_HELP = """\
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


def add_home_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home",
        metavar="DIR",
        help="data folder holding your cases and receipts (default: $NCII_CLIENT_HOME, "
        "else ~/.local/share/ncii-client)",
    )


def add_case_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--case", metavar="ID", help="which case (needed only when there are several)"
    )


def add_hub_option(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    parser.add_argument(
        "--hub",
        metavar="URL",
        required=required,
        help="address of the hub run by your helpline"
        + ("" if required else " (default: the hub this case was sent to)"),
    )
    add_insecure_option(parser)


INSECURE_HELP = (
    "allow a plain http:// hub address on another computer (unencrypted: anyone on the "
    "network path can read and change what is sent; for a test network you control only). "
    "http:// to this computer (127.0.0.1, ::1, localhost) needs no flag"
)


def add_insecure_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--insecure-http", action="store_true", help=INSECURE_HELP)


def open_home(args: argparse.Namespace) -> ClientHome:
    return ClientHome.open(args.home)


def resolve_hub(args: argparse.Namespace, home: ClientHome, case_id: str) -> str:
    """``--hub``; else the only hub this case's receipts name; else the hub remembered for it
    (a case restored with its recovery code has no receipts here); else a usage error that
    asks for ``--hub`` once. A ``--hub`` given for a case with no receipts here is remembered.
    """
    hubs = sorted({r.hub for r in home.receipts(case_id, skip_damaged=True)})
    if args.hub:
        url = normalise_hub_url(args.hub)
        if not hubs and home.remembered_hub(case_id) != url:
            home.remember_hub(case_id, url)
        return url
    if len(hubs) == 1:
        return hubs[0]
    if not hubs:
        remembered = home.remembered_hub(case_id)
        if remembered is not None:
            return remembered
        raise UsageError(
            "this computer does not know where this case was sent yet. Add --hub and the "
            "address your helpline gave you, for example: ncii-client status --hub "
            "https://hub.example.org (needed only once: it is remembered)"
        )
    raise UsageError(
        "this case was sent to several hubs; choose one with --hub: " + ", ".join(hubs)
    )


class Output:
    """Human text goes to stdout, or to stderr when stdout carries JSON (``--json``)."""

    def __init__(self, as_json: bool, out: TextIO | None = None, err: TextIO | None = None):
        self.as_json = as_json
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    @property
    def human(self) -> TextIO:
        return self.err if self.as_json else self.out

    def say(self, text: str = "") -> None:
        print(text, file=self.human, flush=True)

    def data(self, value: Any) -> None:
        if self.as_json:
            print(json.dumps(value, ensure_ascii=True), file=self.out, flush=True)

    def problem(self, text: str) -> None:
        print(f"ncii-client: {text}", file=self.err, flush=True)


def printable(text: str) -> str:
    """A path or message safe on one terminal line (control characters escaped)."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
        for c in text
    )


def confirm(question: str, *, yes: bool, err: TextIO | None = None) -> bool:
    """Ask ``question`` on the terminal; ``--yes`` answers for scripts. No terminal and no
    ``--yes`` is a usage error rather than a silent yes or no."""
    if yes:
        return True
    err = err or sys.stderr
    if not sys.stdin.isatty():
        raise UsageError("add --yes to confirm without a question (no terminal to ask on)")
    print(f"{question} [y/N] ", end="", file=err, flush=True)
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, unit: str, enabled: bool, desc: str | None = None) -> Any:
    """A tqdm bar on stderr when it is a terminal and ``enabled``; otherwise a silent stand-in."""
    if enabled and sys.stderr.isatty() and total > 1:
        return tqdm(total=total, unit=unit, file=sys.stderr, leave=False, desc=desc)
    return _NoBar()


def puzzle_progress(out: Output, enabled: bool) -> Callable[[int, float], None]:
    """The progress callback for solving a hub's case puzzle: one sentence and a bar on
    stderr (a terminal only, and never under --json), updated after each attempt."""
    bar: Any = None

    def progress(done: int, expected: float) -> None:
        nonlocal bar
        if bar is None:
            if not out.as_json:
                out.say(
                    "The hub asks a small puzzle of each new case (it makes flooding the hub "
                    "costly); solving it here, usually a few seconds..."
                )
            bar = progress_bar(
                max(int(expected), 2), "try", enabled and not out.as_json, desc="case puzzle"
            )
        bar.update(1)

    return progress


def guarded(command: Command) -> Command:
    """Run ``command``; print a ClientError's message and return its exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except RecoveryCodeError as exc:
            where = (
                f"check group {exc.group} (groups of 4 characters, counted from the left)"
                if exc.group
                else "check every group"
            )
            print(
                f"ncii-client: that recovery code is not right: {where}, then try again. "
                "Letters and digits only; O and 0, I, L and 1 count the same.",
                file=sys.stderr,
            )
            return EXIT_USAGE
        except ClientError as exc:
            print(f"ncii-client: {exc}", file=sys.stderr)
            return exc.exit_code
        except CryptoError as exc:  # a value this tool could not read (never a secret in it)
            print(f"ncii-client: {exc}", file=sys.stderr)
            return 1

    return run
