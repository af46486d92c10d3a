"""``ncii-hub submitter ...`` and ``ncii-hub review ...``: trusted submitters and held
submissions, administered against the database the running hub uses (specs/hub-api.md 6.2-6.3).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine

from hub.settings import DEFAULT_DATA_DIR, Settings

__all__ = ["REVIEW_EXAMPLES", "SUBMITTER_EXAMPLES", "add_commands", "run"]

EXIT_USAGE = 2
EXIT_STORE = 5

SUBMITTER_EXAMPLES = """\
examples:
  ncii-hub submitter add helpline-a --public-key=Qm9v...43 characters
  ncii-hub submitter add helpline-b --public-key=KEY --hashes-per-hour 50000 --cases-per-day 500
  ncii-hub submitter list
  ncii-hub submitter list --json
  ncii-hub submitter revoke helpline-a

A helpline makes its key with 'ncii-client submitter-key new FILE' and sends the public key
line it prints; its submissions sent with 'ncii-client submit --submitter-key FILE' are then
charged to its own limits instead of to its office's address.
"""

REVIEW_EXAMPLES = """\
examples:
  ncii-hub review list                      # submissions held for review, oldest first
  ncii-hub review list --all --json         # with released and rejected ones
  ncii-hub review release 6f1c0e9a2b7d4c3e8f5a1b2c3d4e5f60
  ncii-hub review reject 6f1c0e9a2b7d4c3e8f5a1b2c3d4e5f60 --json

A review shows counts and timing only: no hash, no case id (an opaque label), no address (a
keyed tag). Release sends the entries to the log; reject erases them like a withdrawal.
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="data directory")
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="as for serve (default: $DATABASE_URL, else DATA/hub.sqlite3)",
    )


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``submitter`` and ``review`` subcommands to ``ncii-hub``."""
    submitter = sub.add_parser(
        "submitter",
        help="register, list or revoke trusted submitters (helplines)",
        epilog=SUBMITTER_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ssub = submitter.add_subparsers(dest="submitter_command", required=True)
    add = ssub.add_parser("add", help="register a submitter's public key with its limits")
    add.add_argument("name", help="submitter name (a-z 0-9 . _ -)")
    add.add_argument(
        "--public-key",
        required=True,
        help="its Ed25519 public key (base64url); write --public-key=KEY, since a key may "
        "begin with '-'",
    )
    add.add_argument("--hashes-per-hour", type=float, help="default: submitter_hashes_per_hour")
    add.add_argument("--hashes-burst", type=int, help="default: submitter_hashes_burst")
    add.add_argument("--cases-per-day", type=float, help="default: submitter_cases_per_day")
    add.add_argument("--cases-burst", type=int, help="default: submitter_cases_burst")
    _common(add)
    _common(ssub.add_parser("list", help="list submitters and their limits"))
    revoke = ssub.add_parser("revoke", help="revoke a submitter: its signed requests get 403")
    revoke.add_argument("name", help="submitter name")
    _common(revoke)

    review = sub.add_parser(
        "review",
        help="list, release or reject submissions held for review",
        epilog=REVIEW_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rsub = review.add_subparsers(dest="review_command", required=True)
    lst = rsub.add_parser("list", help="held submissions: counts, timing, rate history")
    lst.add_argument("--all", action="store_true", help="include released and rejected ones")
    _common(lst)
    for name, text in (
        ("release", "send a held submission's entries to the log"),
        ("reject", "erase a held submission (as a withdrawal erases)"),
    ):
        p = rsub.add_parser(name, help=text)
        p.add_argument("review_id", help="the id 'ncii-hub review list' shows")
        _common(p)


@contextmanager
def _engine(args: argparse.Namespace) -> Iterator[Engine]:
    from crypto.merkle import EMPTY_ROOT
    from hub.db.engine import create_schema, make_engine
    from hub.keystore import load_keys
    from hub.sequencer import sign_tree_head

    settings = Settings(data_dir=args.data, database_url=args.database_url)
    keys = load_keys(settings.data_dir, None, create=False)
    engine = make_engine(settings.effective_database_url)
    try:
        create_schema(engine, sign_tree_head(keys, 0, EMPTY_ROOT))
        yield engine
    finally:
        engine.dispose()


def _fmt_time(value: int | None) -> str:
    if value is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(value))


def _submitter(args: argparse.Namespace) -> int:
    from hub.submitters import SubmitterError, SubmitterRegistry, parse_public_key

    now = int(time.time())
    with _engine(args) as engine:
        registry = SubmitterRegistry(engine)
        try:
            if args.submitter_command == "list":
                items = [
                    {
                        "name": s.name,
                        "state": "revoked" if s.revoked else "active",
                        "public_key": s.key_text,
                        "hashes_per_hour": s.hashes_per_hour,
                        "hashes_burst": s.hashes_burst,
                        "cases_per_day": s.cases_per_day,
                        "cases_burst": s.cases_burst,
                        "created_at": s.created_at,
                    }
                    for s in registry.all()
                ]
                if args.json:
                    print(json.dumps({"v": 1, "submitters": items}))
                elif not items:
                    print("no trusted submitters (add one with 'ncii-hub submitter add')")
                for item in items if not args.json else []:

                    def show(v: object, default: str = "default") -> str:
                        return (
                            default if v is None else f"{v:g}" if isinstance(v, float) else str(v)
                        )

                    print(
                        f"{item['name']}\t{item['state']}\t{item['public_key']}\t"
                        f"hashes/h {show(item['hashes_per_hour'])} "
                        f"(burst {show(item['hashes_burst'])})\t"
                        f"cases/day {show(item['cases_per_day'])} "
                        f"(burst {show(item['cases_burst'])})"
                    )
                return 0
            if args.submitter_command == "add":
                key = parse_public_key(args.public_key)
                registry.add(
                    args.name,
                    key,
                    now,
                    hashes_per_hour=args.hashes_per_hour,
                    hashes_burst=args.hashes_burst,
                    cases_per_day=args.cases_per_day,
                    cases_burst=args.cases_burst,
                )
                action, meaning = "added", "; its endorsed submissions get its own limits"
            else:
                registry.revoke(args.name, now)
                action, meaning = "revoked", "; its endorsed submissions are refused (403)"
        except SubmitterError as exc:
            print(f"ncii-hub: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if args.json:
        print(json.dumps({"v": 1, "submitter": args.name, "action": action}))
    else:
        print(f"submitter {args.name} {action}{meaning}")
    return 0


def _review(args: argparse.Namespace) -> int:
    from hub.admission import load_admission_key
    from hub.keystore import load_keys
    from hub.review import ReviewError, list_held, reject, release
    from hub.vault import VaultError

    now = int(time.time())
    with _engine(args) as engine:
        try:
            if args.review_command == "list":
                items = list_held(engine, load_admission_key(args.data), every=args.all)
                if args.json:
                    print(json.dumps({"v": 1, "held": [i.as_json(now) for i in items]}))
                    return 0
                if not items:
                    print("nothing is held for review")
                for i in items:
                    print(
                        f"{i.review_id}  {i.state:<8} {_fmt_time(i.held_at)}  "
                        f"{i.entries} of {i.submitted} hash(es) held"
                        f"{', new case' if i.new_case else ''}  reason {i.reason}\n"
                        f"    from {i.source}: {i.address_seen_hashes} hash(es), "
                        f"{i.address_seen_cases} new case(s), {i.address_held_hashes} held, "
                        f"since {_fmt_time(i.address_first_seen)}\n"
                        f"    case {i.case}: {i.case_entries_before} entr(ies) before, "
                        f"{i.case_held_submissions} held submission(s), "
                        f"created {_fmt_time(i.case_created_at)}"
                    )
                return 0
            if args.review_command == "release":
                count = release(engine, args.review_id, now)
                action = "released"
                meaning = f": {count} entr(ies) go to the log in the next round"
            else:
                keys = load_keys(args.data, None, create=False)
                try:
                    count = reject(engine, keys.vault, args.review_id, now)
                finally:
                    keys.vault.close()
                action = "rejected"
                meaning = f": {count} entr(ies) erased"
        except ReviewError as exc:
            print(f"ncii-hub: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except VaultError as exc:
            print(
                f"ncii-hub: the submission is rejected but its keys are not erased yet ({exc}); "
                "the hub erases them at its next start",
                file=sys.stderr,
            )
            return EXIT_STORE
    if args.json:
        print(json.dumps({"v": 1, "review_id": args.review_id, "action": action, "entries": count}))
    else:
        print(f"submission {args.review_id} {action}{meaning}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run a ``submitter`` or ``review`` command; returns the exit status."""
    from hub.keystore import require_identity

    require_identity(args.data)  # NoHubError (exit 2) or KeystoreError (5): nothing created
    if args.command == "submitter":
        return _submitter(args)
    return _review(args)
