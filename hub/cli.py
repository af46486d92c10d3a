"""``ncii-hub``: run the hub (``serve``; or ``sequence`` beside ``serve --no-sequencer``),
create one (``init``), print its verifier key
(``keys``), manage partners, trusted submitters and held submissions (``submitter``,
``review``: hub/admin_cli.py), report what the hub did (``stats``). Only ``serve`` and ``init``
may create a hub identity."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from crypto import boundedjson
from crypto.urlredact import redact_url
from hub.keystore import KeystoreError, NoHubError, load_identity, load_keys
from hub.settings import DEFAULT_DATA_DIR, Settings, SettingsError, settings_help

__all__ = ["EXIT_CODES", "main"]

EXIT_USAGE = 2
EXIT_STORE = 5
SWITCH_INTERVAL = 0.001  # seconds; see _tune_for_load
_PROBE_MAX_BYTES = 64 * 1024  # --reuse-port's /v1/log probe: a log's answer is far smaller

EXAMPLES = """\
examples:
  ncii-hub serve                                   # ./ncii-hub-data, SQLite, 127.0.0.1:8000
  ncii-hub serve --origin hub.example.org/ncii     # choose the log origin (first start only)
  ncii-hub serve --database-url postgresql+psycopg://hub@db/hub --host 0.0.0.0
  ncii-hub serve --deny-list benign.txt --set pdq_quality_floor=60 --set ip_rate=5
  ncii-hub serve --witness w1=https://w1.example.org=w1.example.org+1c2a7f4e+BGr...
  ncii-hub serve --witness-file witnesses.txt      # one NAME=URL=VKEY a line, # comments
  ncii-hub init --origin hub.example.org/ncii      # create the hub's keys only (serve does too)
  ncii-hub keys --json                             # the verifier key clients and partners pin
  ncii-hub partner add examplecorp --keys partner-public.json
  ncii-hub partner add examplecorp --keys partner-public.json --json
  ncii-hub partner list --json
  ncii-hub partner rotate examplecorp --keys new-public.json
  ncii-hub partner revoke examplecorp
  ncii-hub submitter add helpline-a --public-key=KEY   # a helpline's higher limits
  ncii-hub review list                             # submissions held for review
  ncii-hub serve --log-format json                 # one JSON object a log line (journald)
  ncii-hub stats --since 2026-01-01 --by week      # the numbers a helpline publishes
  ncii-hub stats --since 2026-11-01 --until 2026-11-30 --json
"""

SEQUENCE_EXAMPLES = """\
examples (two processes, one data folder: the log's work on one core, HTTP on the other):
  ncii-hub sequence --data /var/lib/ncii-hub --witness-file witnesses.txt
  ncii-hub serve --data /var/lib/ncii-hub --no-sequencer --host 0.0.0.0
"""

EXIT_CODES = """\
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


def _parse_set(items: Sequence[str]) -> dict[str, object]:
    fields = Settings.tunable_fields()
    out: dict[str, object] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in fields:
            raise SettingsError(
                f"--set takes NAME=VALUE with NAME one of: {', '.join(sorted(fields))}"
            )
        kind = fields[name]
        try:
            if kind is bool:
                if value not in ("true", "false"):
                    raise ValueError
                out[name] = value == "true"
            else:
                out[name] = kind(value)
        except ValueError:
            raise SettingsError(f"--set {name}: {value!r} is not a {kind.__name__}") from None
    return out


def _log_options(p: argparse.ArgumentParser) -> None:
    """Options of every process that runs this log (``serve`` and ``sequence``)."""
    p.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"data directory (default: {DEFAULT_DATA_DIR})",
    )
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="postgresql+psycopg://... (default: $DATABASE_URL, else DATA/hub.sqlite3)",
    )
    p.add_argument("--origin", help="log origin, fixed at first start")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change a limit; may repeat (every NAME, its default and meaning: below)",
    )
    p.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar="NAME=URL=VKEY",
        help="a witness asked to cosign each checkpoint (C2SP tlog-witness); may repeat",
    )
    p.add_argument("--witness-file", type=Path, help="file of witnesses, one NAME=URL=VKEY a line")
    p.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning"],
        help="how much the hub logs (default: info)",
    )
    p.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="text for people, or json: one object a line for a log shipper (default: text)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ncii-hub",
        description="The NCII hash exchange hub: signed submissions and a verifiable log.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="run the hub",
        epilog=EXAMPLES + "\n" + settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _log_options(serve)
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    serve.add_argument("--deny-list", type=Path, help="file of known-benign hashes, one a line")
    serve.add_argument(
        "--web-dir",
        type=Path,
        help="serve this web/ folder at / instead of the one shipped with the package",
    )
    serve.add_argument(
        "--no-sequencer",
        action="store_true",
        help="serve only; never integrate entries (run 'ncii-hub sequence' beside it)",
    )
    serve.add_argument(
        "--reuse-port",
        action="store_true",
        help="share --port with other hub processes of this data directory (SO_REUSEPORT): "
        "run several to use several cores; one of them sequences",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        default="",
        metavar="LIST",
        help="comma-separated proxy addresses/networks whose X-Forwarded-For gives the client "
        "address (rate limits); default: none, the header is ignored",
    )
    sequence = sub.add_parser(
        "sequence",
        help="integrate entries, publish checkpoints, seal the partner feed, ask witnesses: "
        "the log's work without HTTP, beside 'serve --no-sequencer' (two cores)",
        description=(
            "Run the log's background work in a process of its own: sequencing rounds,\n"
            "checkpoints, witness cosignatures, the partner feed and purges. Beside it,\n"
            "'ncii-hub serve --no-sequencer' (one or more, with the same --data and\n"
            "--database-url) answers HTTP: a busy hub's work on two cores instead of one.\n"
            "One process sequences at a time (a lock); another one stands by."
        ),
        epilog=SEQUENCE_EXAMPLES + "\n" + settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _log_options(sequence)
    _stats_parser(sub)
    init = sub.add_parser(
        "init",
        help="create a new hub's identity (origin, log key, master key, key store) and "
        "print its verifier key; serve does this on its first start too",
    )
    init.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"data directory (default: {DEFAULT_DATA_DIR})",
    )
    init.add_argument("--origin", help="log origin, fixed for ever (default: localhost/ncii-hub)")
    init.add_argument("--json", action="store_true", help="print JSON")
    keys = sub.add_parser(
        "keys", help="print the log's verifier key (never creates one: run it where the hub runs)"
    )
    keys.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"data directory (default: {DEFAULT_DATA_DIR})",
    )
    keys.add_argument("--origin", help="refuse unless the hub's origin is this one")
    keys.add_argument("--json", action="store_true", help="print JSON")
    partner = sub.add_parser(
        "partner",
        help="register, list, rotate or revoke partners (works while the hub runs)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    psub = partner.add_subparsers(dest="partner_command", required=True)
    for name, text in (
        ("add", "register a partner from its partner-public.json"),
        ("list", "list partners"),
        ("revoke", "revoke a partner: no keys for later batches, its requests get 403"),
        ("rotate", "replace a partner's keys; every batch is re-wrapped for the new key"),
    ):
        p = psub.add_parser(name, help=text)
        if name != "list":
            p.add_argument("name", help="partner name")
        if name in ("add", "rotate"):
            p.add_argument("--keys", type=Path, required=True, help="partner-public.json")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="data directory")
        p.add_argument(
            "--database-url",
            default=os.environ.get("DATABASE_URL"),
            help="as for serve (default: $DATABASE_URL, else DATA/hub.sqlite3)",
        )
    from hub.admin_cli import add_commands

    add_commands(sub)  # submitter, review (hub/admin_cli.py)
    return _with_exit_codes(parser)


def _stats_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stats = sub.add_parser(
        "stats",
        help="cases, hashes, withdrawals, partners and witnesses per day or week",
        description="Count what the hub received and delivered, per UTC day or week, from "
        "its data folder and database (the hub may be running or stopped; nothing is written). "
        "Hash types are known only for live entries: a withdrawal erases an entry's key, and "
        "its type with it.",
    )
    stats.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="data directory")
    stats.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="as for serve (default: $DATABASE_URL, else DATA/hub.sqlite3)",
    )
    stats.add_argument("--since", metavar="DATE", help="first UTC day counted, YYYY-MM-DD")
    stats.add_argument("--until", metavar="DATE", help="last UTC day counted, YYYY-MM-DD")
    stats.add_argument(
        "--by", choices=["day", "week"], default="day", help="one row per day or ISO week"
    )
    stats.add_argument("--json", action="store_true", help="print JSON")


def _stats(args: argparse.Namespace) -> int:
    from hub.stats import StatsError, build_report, format_text, parse_date

    since = None if args.since is None else parse_date(args.since)
    until = None if args.until is None else parse_date(args.until)
    shown = [0]

    def progress(read: int) -> None:  # on a terminal only, every 10000 hashes
        if sys.stderr.isatty() and read - shown[0] >= 10_000:
            shown[0] = read
            print(f"\rncii-hub: {read} hashes counted", end="", file=sys.stderr, flush=True)

    try:
        report = build_report(
            args.data, args.database_url, since=since, until=until, by=args.by, progress=progress
        )
    except StatsError as exc:
        print(f"ncii-hub: {exc}", file=sys.stderr)
        return EXIT_STORE
    finally:
        if shown[0]:
            print(file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(format_text(report), end="")
    return 0


def _with_exit_codes(parser: argparse.ArgumentParser, pool: str = "") -> argparse.ArgumentParser:
    """Give ``parser`` and every subcommand under it examples of itself (its own, else the
    lines of its parents' examples that start with its name) and the exit-code table."""
    epilog = parser.epilog or ""
    pool += "\n" + epilog
    if "examples:" not in epilog and "start here:" not in epilog:
        mine = [line for line in pool.splitlines() if line.startswith(f"  {parser.prog} ")]
        if mine:
            epilog = "examples:\n" + "\n".join(dict.fromkeys(mine)) + "\n\n" + epilog
    if EXIT_CODES not in epilog:
        epilog = epilog.rstrip("\n") + "\n\n" + EXIT_CODES
    parser.epilog = epilog.lstrip("\n")
    kind = parser.formatter_class
    if not (isinstance(kind, type) and issubclass(kind, argparse.RawDescriptionHelpFormatter)):
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _with_exit_codes(child, pool)
    return parser


def _report(args: argparse.Namespace, action: str, meaning: str) -> None:
    """The result of partner add/rotate/revoke: one JSON document, or one line for people."""
    if args.json:
        print(json.dumps({"v": 1, "partner": args.name, "action": action}))
    else:
        print(f"partner {args.name} {action}{meaning}")


def _partner(args: argparse.Namespace) -> int:
    import time

    from crypto.merkle import EMPTY_ROOT
    from hub.db.engine import create_schema, make_engine
    from hub.partners import PartnerRegistry, RegistryError, parse_partner_keys
    from hub.sequencer import sign_tree_head

    keys = load_keys(args.data, None, create=False)
    settings = Settings(data_dir=args.data, database_url=args.database_url)
    engine = make_engine(settings.effective_database_url)
    try:
        create_schema(engine, sign_tree_head(keys, 0, EMPTY_ROOT))
        registry = PartnerRegistry(engine)
        now = int(time.time())
        if args.partner_command == "list":
            rows = registry.all()
            items = [
                {
                    "name": p.name,
                    "state": "revoked" if p.revoked else "active",
                    "request_key": base64.urlsafe_b64encode(p.request_key).rstrip(b"=").decode(),
                    "feed_key": base64.urlsafe_b64encode(p.feed_key).rstrip(b"=").decode(),
                    "key_version": p.key_version,
                    "wraps": wraps,
                    "wraps_pending": p.rewrap,
                    "acked": p.acked,
                }
                for p, wraps in rows
            ]
            if args.json:
                print(json.dumps({"v": 1, "partners": items}))
            else:
                for item in items:
                    print(
                        f"{item['name']}\t{item['state']}\tkey v{item['key_version']}\t"
                        f"{item['wraps']} wraps{' (pending)' if item['wraps_pending'] else ''}\t"
                        f"acked {item['acked']}"
                    )
            return 0
        try:
            if args.partner_command == "revoke":
                registry.revoke(args.name, now)
                _report(args, "revoked", ": no keys for later batches, requests get 403")
                return 0
            try:
                raw = args.keys.read_bytes()
            except OSError as exc:
                raise RegistryError(f"cannot read {args.keys}: {exc.strerror}") from None
            partner_keys = parse_partner_keys(raw)
            if args.partner_command == "add":
                registry.add(args.name, partner_keys, now)
                _report(args, "added", "; the running hub wraps every batch for it")
            else:
                registry.rotate(args.name, partner_keys, now)
                _report(args, "rotated", "; the running hub re-wraps every batch")
            return 0
        except RegistryError as exc:
            print(f"ncii-hub: {exc}", file=sys.stderr)
            return EXIT_USAGE
    finally:
        engine.dispose()


def _log_settings(args: argparse.Namespace, **more: Any) -> Settings:
    """The hub's settings from the options every log process takes (``_log_options``)."""
    from hub.witness_config import WitnessConfigError, load_witness_file, parse_witness

    try:
        witnesses = [parse_witness(w) for w in args.witness]
        if args.witness_file is not None:
            witnesses += load_witness_file(args.witness_file)
    except WitnessConfigError as exc:
        raise SettingsError(str(exc)) from None
    return Settings(
        data_dir=args.data,
        database_url=args.database_url,
        origin=args.origin,
        witnesses=tuple(witnesses),
        **more,
        **_parse_set(args.set),  # type: ignore[arg-type]
    )


def _configure_logging(args: argparse.Namespace) -> None:
    if args.log_format == "json":
        from hub.logformat import configure_logging

        configure_logging("json", getattr(logging, args.log_level.upper()))
    else:
        from hub.logformat import redact_handlers

        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
        redact_handlers()  # httpx logs each witness URL itself, credentials included


def _print_witnesses(settings: Settings) -> None:
    for w in settings.witnesses:  # without credentials: this output lands in service logs
        print(f"witness {w.name}: {redact_url(w.url)} ({w.key.encode()})", flush=True)


def _tune_for_load() -> None:
    """Once the app is built, just before serving or sequencing. Under load every blocking
    call of the sequencer's and intake's threads (each SQLite statement, fsync, file
    operation) waits for the GIL up to the switch interval when it returns: 1 ms instead of
    CPython's 5 ms shortens rounds and group commits. The startup heap is frozen out of the
    cyclic collector (hub/serving.py)."""
    from hub.serving import freeze_startup_heap

    sys.setswitchinterval(SWITCH_INTERVAL)
    freeze_startup_heap()


def _sequence(args: argparse.Namespace) -> int:
    """The log's background work without HTTP (the app's lifespan, no server): see the
    ``sequence`` help. Never creates a hub: a wrong --data must not start a second log."""
    from hub.app import create_app
    from hub.serving import run_lifespan_until_stopped

    settings = _log_settings(args, sequencer=True)
    load_keys(args.data, None, create=False)  # NoHubError: exit 2 with what to do
    _configure_logging(args)
    app = create_app(settings)
    keys = app.state.hub.keys
    print(f"ncii-hub: sequencing log {keys.origin} (no HTTP; stop with Ctrl-C)", flush=True)
    _print_witnesses(settings)
    _tune_for_load()
    stopped_by = run_lifespan_until_stopped(app)
    if stopped_by == signal.SIGINT:
        raise KeyboardInterrupt
    _stop_line(args, "stopped (SIGTERM); every accepted submission is kept")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hub.app import create_app
    from hub.serving import (
        LISTEN_BACKLOG,
        ConnectionGuard,
        connection_cap,
        guarded_protocol,
        install_repeat_filter,
        raise_open_file_limit,
        reuse_port_socket,
        run_until_stopped,
    )

    settings = _log_settings(
        args,
        deny_list=args.deny_list,
        web_dir=args.web_dir,
        sequencer=not args.no_sequencer,
        forwarded_allow_ips=args.forwarded_allow_ips,
    )
    if not 0 < args.port < 65536:
        raise SettingsError("--port must be from 1 to 65535")
    _configure_logging(args)
    app = create_app(settings)
    keys = app.state.hub.keys
    if args.reuse_port:
        _check_port_shared_with_this_log(args.host, args.port, app.state.hub)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"ncii-hub: log {keys.origin} at http://{host}:{args.port}/", flush=True)
    print(f"verifier key: {keys.verifier.encode()}", flush=True)
    _print_witnesses(settings)
    open_files = raise_open_file_limit()
    cap = connection_cap(settings.max_connections, open_files)
    if cap < settings.max_connections:
        print(
            f"ncii-hub: max_connections lowered to {cap} to fit the open-file limit "
            f"({open_files}); raise it (ulimit -n) for more",
            flush=True,
        )
    extra: dict[str, Any] = {"log_config": None} if args.log_format == "json" else {}
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        # uvicorn's h11 protocol with a connection cap and a request-head deadline
        # (hub/serving.py; specs/hub-api.md section 6)
        http=guarded_protocol(ConnectionGuard(cap, settings.header_timeout)),
        backlog=LISTEN_BACKLOG,
        access_log=False,  # access logs would record client addresses
        log_level=args.log_level,
        server_header=False,
        timeout_graceful_shutdown=10,
        # Explicit: uvicorn otherwise trusts X-Forwarded-For from loopback (or from
        # $FORWARDED_ALLOW_IPS), letting any local process choose its rate-limit bucket.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or "",
        # json: uvicorn leaves logging alone, its records reach the JSON root handler
        **extra,
    )
    install_repeat_filter()  # after uvicorn.Config: it installs uvicorn's handlers
    from hub.logformat import redact_handlers

    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access"):
        redact_handlers(logging.getLogger(name))  # uvicorn's own handlers (text format) too
    sockets = [reuse_port_socket(args.host, args.port)] if args.reuse_port else None
    _tune_for_load()
    run_until_stopped(config, sockets)  # SIGINT: KeyboardInterrupt (130); SIGTERM: returns (0)
    _stop_line(args, "stopped (SIGTERM); every accepted submission is kept")
    return 0


def _check_port_shared_with_this_log(host: str, port: int, ctx: Any) -> None:
    """``--reuse-port``: the kernel would hand this process a share of the port's
    connections, so whoever already serves the port must be this log on this database.
    Another log (another data folder) would take a share of people's submissions into a log
    nobody follows; this key on another database would sign a second tree (a fork). Asks the
    port's /v1/log: another origin or key, or a tree this database does not hold, refuses
    the start. (Two processes starting in the same instant both see nobody: start them one
    after the other.)"""
    import httpx

    wildcard = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104 (probed)
    target = wildcard.get(host, host)
    where = f"[{target}]" if ":" in target else target
    body = bytearray()
    try:
        with httpx.stream("GET", f"http://{where}:{port}/v1/log", timeout=5.0) as answer:
            status = answer.status_code
            for chunk in answer.iter_bytes():
                body += chunk
                if len(body) > _PROBE_MAX_BYTES:  # whatever answers there is not bounded
                    break
    except httpx.HTTPError:
        return  # nothing answers: this process is the first on the port
    try:  # another party's bytes: bounded in size and depth (a RecursionError otherwise)
        info = boundedjson.loads(body, max_bytes=_PROBE_MAX_BYTES) if status == 200 else None
    except ValueError:  # JsonBoundsError included
        info = None
    if (
        not isinstance(info, dict)
        or info.get("origin") != ctx.keys.origin
        or info.get("verifier_key") != ctx.keys.verifier.encode()
    ):
        raise SettingsError(
            f"--reuse-port: port {port} is already served by another log (or another service), "
            "not this data folder's; choose another --port, or stop that process"
        )
    state = ctx.storage.load_log_state()
    size, root = info.get("size"), info.get("root_hash")
    if (
        not isinstance(size, int)
        or size > state.published_size
        or (size == state.published_size and root != state.published_state.root().hex())
    ):
        raise SettingsError(
            f"--reuse-port: port {port} is served by this log's key on another database (its "
            "tree is not this database's); give every process the same --database-url, or "
            "this key would sign two trees"
        )


def _stop_line(args: argparse.Namespace, text: str) -> None:
    """The one line a stopped command leaves: a log record when serve logs JSON (every line
    of its output stays one JSON object), else plain text on stderr."""
    if getattr(args, "log_format", "text") == "json":
        logging.getLogger("hub").warning(text)
    else:
        print(f"ncii-hub: {text}", file=sys.stderr)


def _init(args: argparse.Namespace) -> int:
    from hub.keystore import CONFIG_NAME, LOG_KEY_NAME, MASTER_KEY_NAME

    if any((args.data / name).exists() for name in (CONFIG_NAME, LOG_KEY_NAME, MASTER_KEY_NAME)):
        raise SettingsError(
            f"{args.data} already holds a hub; nothing was changed "
            f"('ncii-hub keys --data {args.data}' prints its verifier key)"
        )
    return _keys(args, create=True)


def _keys(args: argparse.Namespace, *, create: bool = False) -> int:
    if create:
        keys = load_keys(args.data, args.origin, create=True)
        keys.vault.close()
        origin, verifier = keys.origin, keys.verifier.encode()
    else:  # a report: the identity files only, nothing opened for writing
        origin, signer = load_identity(args.data, args.origin)
        verifier = signer.verifier.encode()
    if args.json:
        print(json.dumps({"origin": origin, "verifier_key": verifier}))
    else:
        print(verifier)
    return 0


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that every cleanup Ctrl-C runs runs for it."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ncii-hub``; returns the exit status."""
    args = _parser().parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(args: argparse.Namespace) -> int:
    try:
        if args.command == "serve":
            code = _serve(args)
        elif args.command == "sequence":
            code = _sequence(args)
        elif args.command == "partner":
            code = _partner(args)
        elif args.command == "stats":
            code = _stats(args)
        elif args.command == "init":
            code = _init(args)
        elif args.command in ("submitter", "review"):
            from hub.admin_cli import run

            code = run(args)
        else:
            code = _keys(args)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at exit
        return code
    except BrokenPipeError:
        # The reader went away (``| head``): quiet the exit-time flush, end as SIGPIPE would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (SettingsError, ValueError, NoHubError) as exc:
        print(f"ncii-hub: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (KeystoreError, OSError) as exc:
        print(f"ncii-hub: {exc}", file=sys.stderr)
        return EXIT_STORE
    except _Terminated:  # serve stops gracefully (0); anything else had not finished (143)
        _stop_line(args, "stopped (SIGTERM)")
        return 0 if args.command in ("serve", "sequence") else 143
    except KeyboardInterrupt:
        _stop_line(args, "interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
