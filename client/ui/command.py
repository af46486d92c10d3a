"""``ncii-client ui``: serve the person's page (the hub's web/ app) on this computer.

The page listens on 127.0.0.1 only, on a random port unless ``--port`` is given, behind a
random token in its address, and passes the page's hub requests to ``--hub``. It serves until
interrupted (Ctrl+C, exit 130) or terminated (SIGTERM, exit 0). specs/client-ui.md.
"""

from __future__ import annotations

import argparse
import signal
import sys
import webbrowser
from pathlib import Path
from types import FrameType

from client.api import ClientError, ClientHome, HubSession, check_hub_address
from client.cli_common import INSECURE_HELP
from client.errors import HubKeyChangedError, UsageError
from client.ui.forward import HubForwarder
from client.ui.server import UiServer, new_token
from client.ui.webapp import WebAppError, default_web_dir, load_web_app
from crypto.errors import CryptoError
from crypto.keys import parse_verifier_key

__all__ = ["register", "resolve_log_key", "run"]

_HELP = "open the helpline's page in your web browser, served from this computer"

_DESCRIPTION = """\
Start the service's page on this computer, in your web browser: the same page the service
shows at its own address, step by step (create a case, choose photos and videos, see what will
be sent, send only fingerprints, check receipts and status, withdraw).

Your photos and videos never leave the browser: the page makes their fingerprints there and
sends only those, signed, through this program to the service given with --hub. The page is
served only to this computer (127.0.0.1) and its address holds a secret part, so other people
and other web pages cannot use it.
"""

_EPILOG = """\
examples:
  ncii-client ui --hub https://hub.example.org        opens the page in your browser
  ncii-client ui --hub URL --no-browser               prints the address to open yourself
  ncii-client ui --hub URL --log-key "$(cat hub.vkey)"  the log key your helpline gave you

The page checks receipts with the log key this computer pinned for the hub when it first
contacted it (ncii-client status, submit ...), or --log-key. Stop it with Ctrl+C.
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
        "--log-key",
        metavar="VKEY",
        default=None,
        help="the service's log verifier key (default: the one pinned for --hub)",
    )
    parser.add_argument(
        "--home", metavar="DIR", type=Path, default=None, help="data folder (the pinned keys)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="port on 127.0.0.1 (default: a free one chosen at random)",
    )
    parser.add_argument(
        "--web-dir",
        metavar="DIR",
        type=Path,
        default=None,
        help="serve this web/ folder instead of the installed page (development)",
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="print the address but do not open a browser"
    )
    parser.set_defaults(run=run)


class _StopRequested(KeyboardInterrupt):
    """SIGTERM: the page server's graceful stop (exit 0); Ctrl-C exits 130 as everywhere."""


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _StopRequested


def resolve_log_key(
    hub: str, given: str | None, home: Path | None, allow_insecure_http: bool
) -> str | None:
    """The log key the page ships with: ``given`` (checked against a pin, if any), else the
    key pinned for ``hub`` in the data folder, else the hub's key pinned now (first contact,
    as every command does). None without a hub or a key."""
    key = None
    if given is not None:
        try:
            key = parse_verifier_key(given.strip()).encode()
        except CryptoError as exc:
            raise UsageError(f"--log-key is not a verifier key ({exc})") from None
    if not hub:
        return key
    client_home = ClientHome.open(home)
    pin = client_home.pin(hub)
    if pin is None and key is None:
        # Two tries: a person waiting for the page should hear soon that the hub is down.
        with HubSession(
            hub, client_home, allow_insecure_http=allow_insecure_http, attempts=2
        ) as session:
            return session.connect().verifier_key
    if pin is not None and key is not None and pin.verifier_key != key:
        raise HubKeyChangedError(
            f"--log-key is not the key this computer pinned for {hub} at first contact; "
            "one of them is not the hub's. Ask the helpline before continuing"
        )
    return key if key is not None else pin.verifier_key if pin is not None else None


def run(args: argparse.Namespace) -> int:
    """Serve the page until stopped: exit 0 after SIGTERM, 130 after Ctrl-C, 2 for a bad
    option or port, 3 when the hub cannot be reached for its first-contact key."""
    port: int = args.port
    if not 0 <= port <= 65535:
        print("ncii-client ui: --port must be between 0 and 65535", file=sys.stderr)
        return 2
    hub = ""
    try:
        if args.hub:
            hub = check_hub_address(args.hub, args.insecure_http)
        log_key = resolve_log_key(hub, args.log_key, args.home, args.insecure_http)
    except ClientError as exc:
        print(f"ncii-client ui: {exc}", file=sys.stderr)
        return exc.exit_code
    token = new_token()
    try:
        app = load_web_app(args.web_dir or default_web_dir(), token, log_key)
    except (WebAppError, OSError) as exc:
        print(f"ncii-client ui: {exc}", file=sys.stderr)
        return 2
    forwarder = HubForwarder(hub) if hub else None
    try:
        server = UiServer(app, token, forwarder, port=port)
    except OSError as exc:
        if forwarder is not None:
            forwarder.close()
        print(f"ncii-client ui: cannot listen on port {port}: {exc.strerror}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    print(
        "Open this address in your web browser (keep it private, it works only on this computer):"
    )
    print(f"  {server.url}", flush=True)
    if not hub:
        print("No --hub given: the page can make fingerprints but not send them.", file=sys.stderr)
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
        "ncii-client ui: stopped" + (" (interrupted)" if code == 130 else "") + ".",
        file=sys.stderr,
        flush=True,
    )
    return code
