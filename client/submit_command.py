"""``ncii-client submit PATH... --hub URL``: fingerprint locally, show the plan, confirm, send.

Only fingerprints leave the computer (specs/submission.md has no field for anything else);
file names are shown here on the screen and never sent. ``--out FILE`` writes a signed offline
bundle instead of sending (specs/client-store.md 5).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from client.bundle import Bundle
from client.cli_common import (
    EXIT_CODES_HELP,
    Output,
    add_case_option,
    add_home_option,
    add_insecure_option,
    confirm,
    guarded,
    open_home,
    printable,
    progress_bar,
    puzzle_progress,
)
from client.errors import NothingToSendError, UsageError
from client.fsutil import atomic_write
from client.hub import HubSession, check_hub_address
from client.plan import READY, FileReport, hash_paths, plan_submission, seal_plan
from client.submitter_command import load_submitter_key

__all__ = ["register"]

_DESCRIPTION = """\
Protect pictures and videos: their fingerprints are computed on this computer and only the
fingerprints are sent, signed with your case key. The files, their names, sizes and folders
never leave this computer.

Pictures too plain to be recognised (PDQ quality below 50: nearly one colour, very dark) are
not sent, and you are told which. Files that are not pictures or videos are skipped.
Sending twice is safe: fingerprints the hub already holds for your case are not sent again.
"""

_EPILOG = (
    """\
examples:
  ncii-client submit ~/Pictures/private --hub https://hub.example.org
  ncii-client submit photo.jpg clip.mp4 --hub URL --yes --wait
  ncii-client submit FOLDER --out case.ncii       sign now, upload later from another machine
  ncii-client upload case.ncii --hub URL          (within 30 days of signing, the hub's default)
  ncii-client submit FOLDER --hub URL --submitter-key helpline.key   (helplines only)

"""
    + EXIT_CODES_HELP
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="fingerprint files here and send only the fingerprints to the hub",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="pictures, videos or folders")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--hub", metavar="URL", help="address of the hub run by your helpline")
    where.add_argument(
        "--out", metavar="FILE", help="write a signed offline bundle (.ncii) instead of sending"
    )
    add_insecure_option(parser)
    parser.add_argument("--yes", action="store_true", help="do not ask before sending")
    parser.add_argument(
        "--wait", action="store_true", help="wait until the public log includes everything"
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, metavar="S", help="longest wait (default 120 s)"
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.add_argument(
        "--submitter-key",
        type=Path,
        metavar="FILE",
        help="helplines: also sign with this registered submitter key "
        "('ncii-client submitter-key new'); people submitting for themselves never need it",
    )
    parser.add_argument("--hidden", action="store_true", help="include hidden files in folders")
    parser.add_argument("--no-progress", action="store_true", help="never show progress bars")
    add_case_option(parser)
    add_home_option(parser)
    parser.set_defaults(run=guarded(run))


def _file_line(f: FileReport) -> str:
    name = printable(f.path)
    if f.state == READY:
        return f"  {name}: {f.hash_count} fingerprint(s) ({', '.join(f.algorithms)})"
    return f"  {name}: NOT SENT: {f.message}"


def _file_json(f: FileReport) -> dict[str, object]:
    return {
        "path": f.path,
        "kind": f.kind,
        "state": f.state,
        "algorithms": list(f.algorithms),
        "hashes": f.hash_count,
        "message": f.message,
    }


def run(args: argparse.Namespace) -> int:
    out = Output(args.json)
    home = open_home(args)
    case_id = home.resolve_case(args.case)
    if args.timeout <= 0 or args.timeout > 86400:
        raise UsageError("--timeout must be between 0 and 86400 seconds")
    if args.hub:
        check_hub_address(args.hub, args.insecure_http)  # before the slow part, not after
    submitter_key = None
    if args.submitter_key is not None:
        if args.out:
            raise UsageError("--submitter-key works only when sending (--hub), not with --out")
        submitter_key = load_submitter_key(args.submitter_key)

    out.say("Fingerprinting on this computer (nothing is sent yet)...")
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = progress_bar(total, "file", not args.no_progress)
        bar.update(1)

    report = hash_paths(args.paths, progress=progress, hidden=args.hidden)
    if bar is not None:
        bar.close()
    plan = plan_submission(report)
    ready = plan.ready_files
    not_sent = [f for f in report.files if f.state != READY]
    for f in report.files[:200]:
        out.say(_file_line(f))
    if len(report.files) > 200:
        out.say(f"  ... and {len(report.files) - 200} more files")
    if report.skipped_hidden:
        out.say(f"  ({report.skipped_hidden} hidden file(s) skipped; --hidden includes them)")
    result: dict[str, object] = {
        "case_id": case_id,
        "files": [_file_json(f) for f in report.files],
        "fingerprints": plan.hash_count,
    }
    if not plan.hashes:
        out.data({**result, "sent": 0})
        raise NothingToSendError(
            "nothing can be sent: no file here is a picture or video that can be recognised. "
            "Check that you chose the right files"
        )
    failed = bool(plan.refused_files)

    if args.out:
        target = Path(args.out)
        question = (
            f"Sign {plan.hash_count} fingerprint(s) of {len(ready)} file(s) "
            f"into the bundle {printable(str(target))}?"
        )
        if not confirm(question, yes=args.yes):
            out.say("Nothing was written.")
            return 1
        envelopes = seal_plan(home.load_secret(case_id), plan, int(time.time()))
        atomic_write(target, Bundle(envelopes).encode())
        out.data({**result, "bundle": str(target), "envelopes": len(envelopes)})
        out.say(
            f"Wrote {plan.hash_count} signed fingerprint(s) to {printable(str(target))} "
            "(fingerprints and signature only). Upload it within 30 days with:\n"
            f"  ncii-client upload {printable(str(target))} --hub URL"
        )
        return 1 if failed else 0

    with HubSession(
        args.hub,
        home,
        allow_insecure_http=args.insecure_http,
        puzzle_progress=puzzle_progress(out, not args.no_progress),
    ) as hub:
        question = (
            f"Send {plan.hash_count} fingerprint(s) of {len(ready)} file(s) to {hub.url}?"
            + (f" ({len(not_sent)} file(s) will not be sent.)" if not_sent else "")
        )
        if not confirm(question, yes=args.yes):
            out.say("Nothing was sent.")
            return 1
        hub.submitter_key = submitter_key
        hub.connect()
        sent = hub.submit(case_id, plan)
        if sent.entries:
            out.say(f"Sent. The hub accepted {len(sent.entries)} fingerprint(s).")
        if sent.held:
            out.say(
                f"{sent.held} of them are held for review: the hub keeps them safely, but a "
                "person who runs the hub looks at how much was sent (never at your pictures or "
                "fingerprints) before they go to the public log and to partners. This happens "
                "when much is sent at once. Nothing more to do; 'ncii-client status' shows "
                "when they are released."
            )
        if sent.already_sent:
            out.say(f"{sent.already_sent} fingerprint(s) were already with the hub (not resent).")
        result.update(
            {
                "hub": hub.url,
                "sent": len(sent.entries),
                "already_sent": sent.already_sent,
                "held_for_review": sent.held,
                "entries": [e.entry_id for e in sent.entries],
            }
        )
        if args.wait and sent.held:
            out.say("Not waiting for the public log: held fingerprints join it once released.")
        elif args.wait:
            summary = _wait(hub, case_id, args, out)
            result.update({"included": summary[0], "pending": summary[1]})
        else:
            out.say(
                "Your receipts are kept on this computer. The public log includes new entries "
                "within seconds; then run 'ncii-client receipts fetch' and "
                "'ncii-client receipts verify'."
            )
    out.data(result)
    return 1 if failed else 0


def _wait(hub: HubSession, case_id: str, args: argparse.Namespace, out: Output) -> tuple[int, int]:
    out.say("Waiting for the public log to include them...")
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = progress_bar(total, "entry", not args.no_progress)
        bar.n = done  # tqdm counter (no-op attribute on the stand-in)
        if hasattr(bar, "refresh"):
            bar.refresh()

    summary = hub.wait_for_inclusion(case_id, timeout=args.timeout, progress=progress)
    if bar is not None:
        bar.close()
    if summary.pending:
        out.say(
            f"{summary.included} included so far, {summary.pending} still pending. Nothing is "
            "lost: run 'ncii-client receipts fetch' later."
        )
    else:
        out.say(f"Done: all {summary.included} receipt(s) are in the public log.")
    return summary.included, summary.pending
