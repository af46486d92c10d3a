"""``ncii-audit``: monitor, full, witness init/serve, compare (specs/audit.md, specs/witness.md).

Exit codes: the one table of all four command lines (README.md "Exit codes", :data:`EXIT_CODES`);
for this tool (auditor.errors): 1 alert (the log misbehaved), 2 usage or configuration, 3 the
log or a source could not be read, or compare could not check every pair (no verdict).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from auditor.compare import compare_checkpoints, load_notes
from auditor.errors import (
    EXIT_ALERT,
    EXIT_BROKEN_PIPE,
    EXIT_OK,
    AuditError,
    ConfigError,
    FetchError,
)
from auditor.fullaudit import AuditReport, CachedSource, full_audit
from auditor.httpguard import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
)
from auditor.monitor import Alert, Monitor, MonitorState, RoundResult, post_webhook
from auditor.proofs import check_consistency
from auditor.source import (
    MAX_CHECKPOINT_BYTES,
    DirSource,
    HttpSource,
    LogSource,
    open_source,
    read_file_capped,
)
from auditor.trust import LogTrust, VerifiedCheckpoint
from crypto.errors import InconsistentTreeError, MalformedError, VerificationError
from crypto.urlredact import redact_urls

__all__ = ["main"]

PROG = "ncii-audit"

EXAMPLES = """\
examples:
  ncii-audit monitor --log https://hub.example.org --log-key 'hub.example.org/ncii+6d0d...' --once
  ncii-audit monitor --log https://hub.example.org --log-key VKEY --webhook https://alerts.example
  ncii-audit full --log https://hub.example.org --log-key VKEY          # rebuild every tile
  ncii-audit full --tiles-dir ./mirror --log-key VKEY --json
  ncii-audit witness init --key witness.key --name witness1.example     # prints the verifier key
  ncii-audit witness init --key witness.key --json
  ncii-audit witness serve --key witness.key --log 'hub.example.org/ncii=VKEY' --port 8080
  ncii-audit compare a.checkpoint https://mirror.example/checkpoint --log-key VKEY --log URL
  ncii-audit compare a.checkpoint b.checkpoint --log-key VKEY --json > evidence.json
  ncii-audit page --hub https://hub.example.org --log-key VKEY   # the page is the signed one
  ncii-audit page --hub https://hub.example.org --log-key VKEY --source ./ncii-exchange --json
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


def _say(message: str) -> None:
    # Every URL shown without userinfo or query: a --log or --webhook URL may carry credentials.
    print(f"{PROG}: {redact_urls(message)}", file=sys.stderr, flush=True)


def _emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    print(redact_urls(json.dumps(data, indent=1) if as_json else text), flush=True)


def _trust_args(p: argparse.ArgumentParser, log_key_required: bool = False) -> None:
    p.add_argument(
        "--log-key",
        metavar="VKEY",
        required=log_key_required,
        help="the log's Ed25519 verifier key (name+id+base64)",
    )
    p.add_argument("--origin", help="the log's origin line (default: the log key's name)")
    p.add_argument(
        "--witness-key",
        metavar="VKEY",
        action="append",
        default=[],
        help="a witness's cosignature/v1 verifier key (repeat)",
    )
    p.add_argument(
        "--quorum",
        type=int,
        default=None,
        help="witness cosignatures required (default: all --witness-key)",
    )


def _trust(ns: argparse.Namespace) -> LogTrust:
    return LogTrust.from_strings(ns.log_key, ns.witness_key, origin=ns.origin, quorum=ns.quorum)


def _state_dir(ns: argparse.Namespace, trust: LogTrust) -> Path:
    """``--state``, or ``./ncii-audit-state/<origin>/<key hash>``: one folder per log key, so
    two logs that share an origin never share state or cached tiles."""
    if ns.state is not None:
        return Path(ns.state)
    legacy = Path("ncii-audit-state") / urllib.parse.quote(trust.origin, safe="")
    keyed = legacy / trust.key_hash
    if not keyed.exists() and (legacy / "monitor.json").exists():
        # A monitor state from before directories were keyed: keep using it (its checkpoint is
        # re-verified with the given key), rather than silently starting from nothing.
        _say(f"note: using the earlier state directory {legacy} (give --state to choose)")
        return legacy
    return keyed


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- monitor --------------------------------------------------------------------------------


def _round_text(result: RoundResult) -> str:
    if result.alert is not None:
        return f"ALERT {result.alert.kind}: {result.alert.message}"
    if result.awaiting_cosignatures:
        return "pending: the newest checkpoint is not yet cosigned by the witness quorum"
    assert result.checkpoint is not None
    cp = result.checkpoint
    if result.previous_size is None:
        return f"ok: first checkpoint, size {cp.size} root {_b64(cp.root)}"
    if result.changed:
        return f"ok: size {result.previous_size} -> {cp.size}, consistent, root {_b64(cp.root)}"
    return f"ok: unchanged at size {cp.size}"


def cmd_monitor(ns: argparse.Namespace) -> int:
    trust = _trust(ns)
    if ns.interval <= 0:
        raise ConfigError("--interval must be positive")
    source = open_source(ns.log)
    state = MonitorState.open(_state_dir(ns, trust), trust)
    monitor = Monitor(source, trust, state)
    try:
        while True:
            try:
                result = monitor.round()
            except FetchError as exc:
                if ns.once:
                    raise
                _say(f"warning: {exc}; retrying in {ns.interval} s")
                time.sleep(ns.interval)
                continue
            _emit(ns.json, result.to_json(), _round_text(result))
            if result.alert is not None:
                _say(f"ALERT {result.alert.kind}: {result.alert.message}")
                if ns.webhook:
                    problem = post_webhook(ns.webhook, result.alert)
                    if problem:
                        _say(f"warning: alert not delivered: {problem}")
                return EXIT_ALERT
            if ns.once:
                return EXIT_OK
            time.sleep(ns.interval)
    finally:
        state.close()


# -- full -----------------------------------------------------------------------------------


NO_STATE_WARNING = (
    "warning: --no-state: nothing is remembered between runs, so this audit cannot detect a "
    "fork or a rollback; it only shows that the log's data matches the checkpoint it serves now"
)


def cmd_full(ns: argparse.Namespace) -> int:
    trust = _trust(ns)
    if (ns.log is None) == (ns.tiles_dir is None):
        raise ConfigError("give exactly one of --log URL and --tiles-dir DIR")
    if ns.no_state and ns.state is not None:
        raise ConfigError("give at most one of --state DIR and --no-state")
    source: LogSource = (
        DirSource(Path(ns.tiles_dir)) if ns.tiles_dir is not None else open_source(ns.log)
    )
    state = None if ns.no_state else MonitorState.open(_state_dir(ns, trust), trust, "full")
    try:
        return _full(ns, trust, source, state)
    finally:
        if state is not None:
            state.close()
        if ns.no_state:
            _say(NO_STATE_WARNING)


def _full(
    ns: argparse.Namespace, trust: LogTrust, source: LogSource, state: MonitorState | None
) -> int:
    if ns.checkpoint is not None:
        try:
            note = read_file_capped(Path(ns.checkpoint), MAX_CHECKPOINT_BYTES, "checkpoint")
        except FetchError as exc:
            raise ConfigError(str(exc)) from exc
    else:
        note = source.get("checkpoint")
    try:
        cp = trust.open(note)
    except (MalformedError, VerificationError) as exc:
        _emit(
            ns.json,
            {"status": "alert", "alert": "bad_signature", "message": str(exc)},
            f"ALERT bad_signature: the checkpoint does not verify: {exc}",
        )
        return EXIT_ALERT
    if state is not None:
        alert = _against_trusted(ns, trust, source, state, cp)
        if alert is not None:
            state.record_alert(alert)
            _emit(
                ns.json,
                {"status": "alert", **alert.to_json()},
                f"ALERT {alert.kind}: {alert.message}",
            )
            _say(f"ALERT {alert.kind}: {alert.message}")
            return EXIT_ALERT
    report, rebuilt = _audit_with_cache(ns, trust, source, state, cp)
    if rebuilt:
        _say(
            "note: the tile cache held tiles of another tree (stale, or copied from another "
            "log); it was discarded and every tile fetched again from the log"
        )
    if report.ok:
        text = (
            f"ok: {cp.size} entries, {report.tiles_checked} tiles and "
            f"{report.bundles_checked} entry bundles rebuild root {_b64(cp.root)}"
        )
        previous = state.latest if state is not None else None
        if state is not None and ns.checkpoint is None:
            if previous is None or previous.size < cp.size:
                state.record(cp, int(time.time()))
            if previous is not None and previous.size < cp.size:
                text += f"; consistent with the size {previous.size} trusted before"
    else:
        lines = [f"ALERT: the log's data does not match its checkpoint of size {cp.size}"]
        lines += [
            f"  {p.path} ({p.kind}"
            + (f", level {p.level}" if p.level is not None else "")
            + (f", position {p.position}" if p.position is not None else "")
            + f"): {p.message}"
            for p in report.problems
        ]
        text = "\n".join(lines)
    _emit(ns.json, report.to_json(), text)
    return EXIT_OK if report.ok else EXIT_ALERT


def _against_trusted(
    ns: argparse.Namespace,
    trust: LogTrust,
    source: LogSource,
    state: MonitorState,
    cp: VerifiedCheckpoint,
) -> Alert | None:
    """Compare ``cp`` with the last checkpoint a full audit trusted, proofs from the log's own
    tiles (never the cache). A --checkpoint FILE older than it is checked as a prefix of it."""
    prev = state.latest
    if prev is None:
        return None  # the first audit: the audit itself checks every tile against cp
    if ns.checkpoint is None or cp.size >= prev.size:
        alert = Monitor(source, trust, state).compare(prev, cp)
        # Tiles that do not authenticate cp are left to the audit, which names each one.
        return None if alert is not None and alert.kind == "bad_tiles" else alert
    try:
        result = check_consistency(cp, prev, source)
    except (FetchError, InconsistentTreeError, MalformedError) as exc:
        _say(f"warning: could not prove {ns.checkpoint} a prefix of the trusted size {prev.size}")
        _say(f"  ({exc})")
        return None
    if result.consistent:
        return None
    return Alert(
        "inconsistent",
        trust.origin,
        source.name,
        f"the checkpoint of size {cp.size} is not a prefix of the trusted one of size "
        f"{prev.size}: the log forked",
        int(time.time()),
        prev,
        cp.note,
        cp,
        result.evidence(),
    )


def _audit_with_cache(
    ns: argparse.Namespace,
    trust: LogTrust,
    source: LogSource,
    state: MonitorState | None,
    cp: VerifiedCheckpoint,
) -> tuple[AuditReport, bool]:
    """Run the audit (over HTTP through the tile cache of the state directory). If it fails
    while cached tiles were used, audit again from a fresh cache: a cache of another tree
    (an old run on a log since recreated, a copied folder) must not pass for the log's fault.
    Returns (report, whether the cache was discarded)."""
    if not isinstance(source, HttpSource):
        return _run_audit(source, cp, 1), False
    base = state.directory if state is not None else None
    if base is None:  # --no-state: a cache that does not outlive the run
        with tempfile.TemporaryDirectory(prefix="ncii-audit-") as tmp:
            return _run_audit(CachedSource(source, Path(tmp)), cp, ns.workers), False
    cached = CachedSource(source, base / "tiles")
    report = _run_audit(cached, cp, ns.workers)
    if report.ok or cached.reused == 0:
        return report, False
    fresh_dir = base / f"tiles.{secrets.token_hex(4)}.new"
    try:
        report = _run_audit(CachedSource(source, fresh_dir), cp, ns.workers)
    except BaseException:
        shutil.rmtree(fresh_dir, ignore_errors=True)
        raise
    old_dir = base / f"tiles.{secrets.token_hex(4)}.old"
    (base / "tiles").rename(old_dir)
    fresh_dir.rename(base / "tiles")
    shutil.rmtree(old_dir, ignore_errors=True)
    return report, report.ok


def _run_audit(source: LogSource, cp: VerifiedCheckpoint, workers: int) -> AuditReport:
    bar = _progress(cp.size)
    try:
        return full_audit(source, cp, progress=bar.update if bar else None, workers=workers)
    finally:
        if bar is not None:
            bar.close()


def _progress(total: int) -> Any:
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="entries", unit_scale=True, file=sys.stderr)


# -- witness --------------------------------------------------------------------------------


def cmd_witness_init(ns: argparse.Namespace) -> int:
    from auditor.witness import create_key_file

    name = ns.name or f"{socket.gethostname()}/witness"
    key = create_key_file(Path(ns.key), name)
    if ns.json:
        vkey = key.verifier.encode()
        print(json.dumps({"v": 1, "name": name, "key_file": ns.key, "verifier_key": vkey}))
    else:
        print(key.verifier.encode(), flush=True)
    _say(f"witness key written to {ns.key} (mode 0600); share the verifier key above")
    return EXIT_OK


def cmd_witness_serve(ns: argparse.Namespace) -> int:
    import logging

    from auditor.httpguard import serve
    from auditor.logformat import configure_logging
    from auditor.witness import Witness, load_key_file, parse_log_option
    from auditor.witness_app import create_app
    from auditor.witness_store import WitnessStore

    if not ns.log:
        raise ConfigError("give at least one --log ORIGIN=VKEY")
    logs: dict[str, list[Any]] = {}
    for value in ns.log:
        origin, key = parse_log_option(value)
        logs.setdefault(origin, []).append(key)
    signer = load_key_file(Path(ns.key))
    store = WitnessStore(Path(ns.state))
    witness = Witness(signer, logs, store)
    if ns.header_timeout <= 0 or ns.body_timeout <= 0 or ns.max_connections < 1:
        raise ConfigError(
            "--header-timeout and --body-timeout must be positive, --max-connections at least 1"
        )
    configure_logging(ns.log_format)
    logging.getLogger("auditor.witness").info(
        "witness %s serving %d log(s) at http://%s:%d/",
        signer.name,
        len(logs),
        ns.host,
        ns.port,
        extra={"logs": len(logs), "port": ns.port},
    )
    print(f"verifier key: {signer.verifier.encode()}", flush=True)
    serve(
        create_app(witness, body_timeout=ns.body_timeout),
        ns.host,
        ns.port,
        header_timeout=ns.header_timeout,
        max_connections=ns.max_connections,
        log_format=ns.log_format,
    )  # SIGINT: KeyboardInterrupt (130); SIGTERM: returns, a graceful stop (0)
    _say("stopped (SIGTERM)")
    return EXIT_OK


# -- compare --------------------------------------------------------------------------------


def cmd_compare(ns: argparse.Namespace) -> int:
    trust = _trust(ns)
    notes = load_notes(ns.sources)
    log = open_source(ns.log) if ns.log else None
    report = compare_checkpoints(trust, notes, log)
    evidence = report.to_json()
    if ns.output:
        Path(ns.output).write_text(redact_urls(json.dumps(evidence, indent=1)) + "\n")
    shown = json.dumps(evidence) if ns.json else json.dumps(evidence, indent=1)
    print(redact_urls(shown), flush=True)
    for fork in report.forks:
        _say(
            f"FORK ({fork['kind']}): {fork['first']['source']} (size {fork['first']['size']}) "
            f"vs {fork['second']['source']} (size {fork['second']['size']})"
        )
    for pair in report.undetermined:
        _say(f"undetermined: {pair['first']} vs {pair['second']} (give --log to prove)")
    for bad in report.rejected:
        _say(f"rejected {bad['source']}: {bad['error']}")
    return report.exit_code


# -- page -----------------------------------------------------------------------------------


def cmd_page(ns: argparse.Namespace) -> int:
    from auditor.page import audit_page, read_source
    from crypto.errors import KeyFormatError
    from crypto.keys import parse_verifier_key

    try:
        key = parse_verifier_key(ns.log_key)
    except KeyFormatError as exc:
        raise ConfigError(f"--log-key: {exc}") from None
    source = read_source(Path(ns.source)) if ns.source is not None else None
    report = audit_page(ns.hub, key, source)
    if report.ok:
        text = (
            f"ok: {report.files_checked} files of page {report.tree} match the signed manifest"
            f"; {report.loads_followed} loads followed"
            + ("; same as the source" if report.source_compared else "")
        )
    else:
        lines = [f"ALERT: the page {ns.hub} serves differs from its signed manifest or source"]
        lines += [f"  {p.path} ({p.kind}): {p.message}" for p in report.problems]
        text = "\n".join(lines)
    _emit(ns.json, report.to_json(), text)
    return EXIT_OK if report.ok else EXIT_ALERT


# -- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Audit a transparency log: follow it, rebuild it, witness it, compare "
        "checkpoints seen elsewhere.",
        epilog=EXAMPLES,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("monitor", help="follow checkpoints and alert on inconsistency")
    p.add_argument("--log", required=True, metavar="URL", help="log prefix (http(s):// or file://)")
    _trust_args(p)
    p.add_argument("--state", metavar="DIR", help="state directory")
    p.add_argument("--interval", type=float, default=60.0, metavar="S")
    p.add_argument("--once", action="store_true", help="one round, then exit (cron)")
    p.add_argument("--webhook", metavar="URL", help="POST alerts as JSON here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("full", help="rebuild the whole tree from tiles and entry bundles")
    p.add_argument("--log", metavar="URL", help="log prefix (http(s):// or file://)")
    p.add_argument("--tiles-dir", metavar="DIR", help="a local directory laid out as the log")
    _trust_args(p)
    p.add_argument("--checkpoint", metavar="FILE", help="audit this checkpoint note instead")
    p.add_argument(
        "--state",
        metavar="DIR",
        help="state directory: last trusted checkpoint and tile cache "
        "(default ./ncii-audit-state/<origin>/<key hash>)",
    )
    p.add_argument(
        "--no-state",
        action="store_true",
        help="remember nothing (then a fork or rollback cannot be detected)",
    )
    p.add_argument("--workers", type=int, default=8, help="parallel downloads")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_full)

    p = sub.add_parser("witness", help="a C2SP tlog-witness")
    wsub = p.add_subparsers(dest="witness_command", required=True)
    w = wsub.add_parser("init", help="make a witness key and print its verifier key")
    w.add_argument("--key", default="witness.key", metavar="FILE")
    w.add_argument("--name", help="witness key name (default: <hostname>/witness)")
    w.add_argument("--json", action="store_true", help="print the key name and verifier key")
    w.set_defaults(func=cmd_witness_init)
    w = wsub.add_parser("serve", help="serve add-checkpoint")
    w.add_argument("--key", required=True, metavar="FILE")
    w.add_argument("--log", action="append", default=[], metavar="ORIGIN=VKEY")
    w.add_argument("--state", default="witness-state", metavar="FILE_OR_DIR")
    w.add_argument("--host", default="127.0.0.1")
    w.add_argument("--port", type=int, default=8080)
    w.add_argument(
        "--header-timeout",
        type=float,
        default=DEFAULT_HEADER_TIMEOUT,
        metavar="S",
        help="close a connection whose request head is not complete after S seconds",
    )
    w.add_argument(
        "--body-timeout",
        type=float,
        default=DEFAULT_BODY_TIMEOUT,
        metavar="S",
        help="answer 408 if a request body is not complete S seconds after its head",
    )
    w.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="open connections at most (the oldest idle one is closed past it)",
    )
    w.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines on stderr as text or one JSON object per line (default text)",
    )
    w.set_defaults(func=cmd_witness_serve)

    p = sub.add_parser("compare", help="prove a fork from checkpoints seen elsewhere")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="checkpoint file or URL")
    _trust_args(p)
    p.add_argument("--log", metavar="URL", help="log prefix, for consistency proofs from tiles")
    p.add_argument("--output", metavar="FILE", help="also write the evidence JSON here")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the evidence as one line of JSON (without it: the same JSON, indented)",
    )
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "page",
        help="check that a hub serves exactly the page its signed manifest lists",
        description="Fetch the hub's signed page manifest, verify it with the log key, fetch "
        "/ and every file the page loads, and compare every byte; check the security headers; "
        "with --source, compare with the page built from a checkout of the project.",
    )
    p.add_argument("--hub", required=True, metavar="URL", help="the hub's address")
    p.add_argument(
        "--log-key", required=True, metavar="VKEY", help="the log's verifier key (name+id+base64)"
    )
    p.add_argument("--source", metavar="DIR", help="a checkout of the project (or its web/ folder)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_page)
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


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that every cleanup Ctrl-C runs runs for it."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


_SERVICES = (cmd_monitor, cmd_witness_serve)
"""Commands that run until stopped: SIGTERM is their graceful stop (exit 0), not an abort."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (also used by the console script)."""
    ns = build_parser().parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(ns)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(ns: argparse.Namespace) -> int:
    try:
        code: int = ns.func(ns)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at exit
    except BrokenPipeError:
        # The reader went away (``| head``): quiet the exit-time flush, end as SIGPIPE would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except AuditError as exc:
        _say(str(exc))
        return exc.exit_code
    except _Terminated:
        _say("stopped (SIGTERM)")
        return EXIT_OK if ns.func in _SERVICES else 143
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
