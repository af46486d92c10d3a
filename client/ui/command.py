"""``ncii-client ui``: start the local page and open it in the default browser.

The page listens on 127.0.0.1 only, on a random port unless ``--port`` is given, behind a random
token in its address. It serves until interrupted (Ctrl+C) or terminated.
"""

from __future__ import annotations

import argparse
import signal
import sys
import webbrowser
from pathlib import Path
from types import FrameType

from client.api import ClientError, check_hub_address
from client.cli_common import INSECURE_HELP
from client.ui.library_ops import LibraryOps
from client.ui.ops import CaseOps
from client.ui.server import UiServer, UiState

__all__ = ["register", "run"]

_HELP = "open a simple page in your web browser to protect photos without using the terminal"

_DESCRIPTION = """\
Start a page on this computer, in your web browser, that does everything step by step:
choose photos and videos, make their fingerprints, check what will be sent, send only the
fingerprints, keep your case id and recovery code, check status and withdraw.

The page is served only to this computer (127.0.0.1) and its address holds a secret part, so
other people and other web pages cannot use it. Your files are read in memory by this program
and never saved or sent; only fingerprints go to the service given with --hub.
"""

_EPILOG = """\
examples:
  ncii-client ui --hub https://hub.example.org        opens the page in your browser
  ncii-client ui --hub URL --no-browser               prints the address to open yourself

Stop it with Ctrl+C when you are done.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ui`` to the ``ncii-client`` parser."""
    parser = subparsers.add_parser(
        "ui",
        help=_HELP,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--hub", metavar="URL", default="", help="address of the helpline's service"
    )
    parser.add_argument("--insecure-http", action="store_true", help=INSECURE_HELP)
    parser.add_argument(
        "--home", metavar="DIR", type=Path, default=None, help="data folder for cases"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="port on 127.0.0.1 (default: a free one chosen at random)",
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="print the address but do not open a browser"
    )
    parser.set_defaults(run=run)


def make_ops(hub_url: str, home: Path | None, insecure_http: bool = False) -> CaseOps:
    """The case operations behind the page: the client library's, on the CLI's data folder."""
    return LibraryOps(hub_url, home, allow_insecure_http=insecure_http)


class _StopRequested(KeyboardInterrupt):
    """SIGTERM: the page server's graceful stop (exit 0); Ctrl-C exits 130 as everywhere."""


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _StopRequested


def run(args: argparse.Namespace) -> int:
    """Serve the page until stopped: exit code 0 after SIGTERM, 130 after Ctrl-C, 2 if the port
    cannot be used."""
    port: int = args.port
    if not 0 <= port <= 65535:
        print("ncii-client ui: --port must be between 0 and 65535", file=sys.stderr)
        return 2
    if args.hub:
        try:
            check_hub_address(args.hub, args.insecure_http)
        except ClientError as exc:
            print(f"ncii-client ui: {exc}", file=sys.stderr)
            return 2
    state = UiState(ops=make_ops(args.hub, args.home, args.insecure_http), hub_url=args.hub)
    try:
        server = UiServer(state, port=port)
    except OSError as exc:
        print(f"ncii-client ui: cannot listen on port {port}: {exc.strerror}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    print(
        "Open this address in your web browser (keep it private, it works only on this computer):"
    )
    print(f"  {server.url}", flush=True)
    if not args.hub:
        print("No --hub given: fingerprints can be made but not sent.", file=sys.stderr)
    if not args.no_browser:
        webbrowser.open(server.url)
    code = 0
    try:
        server.serve_forever(poll_interval=0.2)
    except _StopRequested:
        pass
    except KeyboardInterrupt:
        code = 130
    finally:
        server.server_close()
    print(
        "ncii-client ui: stopped"
        + (" (interrupted)" if code == 130 else "")
        + ". Your cases and receipts are kept in the data folder.",
        file=sys.stderr,
        flush=True,
    )
    return code
