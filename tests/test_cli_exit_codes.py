"""One exit-code table for the four command lines, printed by every ``--help``, and messages
written for people, never a Python class name (issue 18, finding 7)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("ncii-client", "ncii-hub", "ncii-partner", "ncii-audit")

TABLE = """\
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


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("tool", TOOLS)
def test_every_top_level_help_prints_the_one_table(tool: str) -> None:
    done = _run(str(BIN / tool), "--help")
    assert done.returncode == 0, done.stderr
    assert TABLE in done.stdout, done.stdout


def test_the_table_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^  (\d+) +(.+)$", TABLE, re.M)
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    for code, meaning in rows:
        assert f"| {code} | {meaning.replace('| head', '`| head`')} |" in section.replace(
            "`\\| head`", "`| head`"
        ), code


def test_each_error_class_maps_to_its_row() -> None:
    import auditor.errors as audit
    import client.errors as client
    import partner_sdk.errors as partner
    from auditor.compare import CompareReport

    assert client.UsageError("x").exit_code == 2
    assert client.HubProtocolError("x").exit_code == 1
    assert client.HubKeyChangedError("x").exit_code == 1
    assert client.HubUnreachableError("x").exit_code == 3
    assert client.HubRefusedError("x", "case_withdrawn", 409).exit_code == 4
    assert client.StoreError("x").exit_code == 5

    assert partner.VerificationFailure("x").exit_code == 1
    assert partner.UsageError("x").exit_code == 2
    assert partner.HubUnreachableError("x").exit_code == 3
    assert partner.HubRefusedError(403, "partner_revoked", "x").exit_code == 4
    assert partner.StoreError("x").exit_code == 5

    assert audit.ConfigError("x").exit_code == 2
    assert audit.FetchError("x").exit_code == 3
    assert audit.EXIT_ALERT == 1 and audit.EXIT_REFUSED == 4 and audit.EXIT_STORE == 5
    incomplete = CompareReport(None, undetermined=[{"first": "a", "second": "b"}])  # type: ignore[arg-type]
    assert (
        incomplete.verdict == "incomplete" and incomplete.exit_code == 3
    )  # no verdict: row 3, not a code of its own


def test_hub_cli_codes(tmp_path: Path) -> None:
    hub = str(BIN / "ncii-hub")
    bad_setting = _run(hub, "serve", "--data", str(tmp_path / "d"), "--set", "nope=1")
    assert bad_setting.returncode == 2 and "--set takes NAME=VALUE" in bad_setting.stderr
    assert _run(hub, "keys", "--data", str(tmp_path / "d")).returncode == 2  # no hub there
    assert _run(hub, "init", "--data", str(tmp_path / "d")).returncode == 0
    assert _run(hub, "keys", "--data", str(tmp_path / "d")).returncode == 0
    missing = _run(hub, "partner", "add", "p1", "--keys", str(tmp_path / "none.json"),
                   "--data", str(tmp_path / "d"))  # fmt: skip
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    (tmp_path / "file").write_text("")
    unusable = _run(hub, "init", "--data", str(tmp_path / "file" / "d"))
    assert unusable.returncode == 5, unusable.stderr


CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]+(Error|Failure|Exception)\b")


def test_partner_messages_name_no_class(tmp_path: Path) -> None:
    done = _run(str(BIN / "ncii-partner"), "status", "--dir", str(tmp_path / "none"))
    assert done.returncode == 2
    assert not CLASS_NAME.search(done.stderr), done.stderr
    assert "run 'ncii-partner sync' first" in done.stderr


def test_no_class_name_is_formatted_into_a_message() -> None:
    """``type(exc).__name__`` reaches people only as the machine field ``error`` of --json
    output (partner CLI) and the per-file ``error`` of the match service (an API)."""
    allowed = {
        ("partner_sdk/cli.py", 3),  # {"error": <class>} in --json output and JSON log lines
        ("partner_sdk/follow.py", 4),  # the "error" field of sync --follow's JSON log lines
        ("partner_sdk/matcher.py", 1),  # the match API's per-file error field
        ("partner_sdk/service.py", 3),  # the match API's error field, /readyz and its health
        ("client/hash_command.py", 1),  # only when the message is empty
        ("hub/app.py", 2),  # operator logs
        ("auditor/witness_app.py", 1),  # the witness's /readyz detail, for its operator
        ("hub/health.py", 3),  # the hub's /readyz detail, for its operator
        ("hub/witnesses.py", 2),  # operator logs and witness status
        ("hub/cli.py", 1),  # a type name in a --set message ("not a float")
    }
    found = set()
    for package in ("client", "hub", "partner_sdk", "auditor"):
        for path in (ROOT / package).rglob("*.py"):
            count = len(re.findall(r"\.__name__\b", path.read_text()))
            if count:
                found.add((str(path.relative_to(ROOT)), count))
    assert found <= allowed, found - allowed


def test_a_setting_with_its_own_option_is_refused_by_set(tmp_path: Path) -> None:
    """``--set sequencer=false`` used to reach Settings twice (TypeError, a traceback): a
    setting that has its own option (--no-sequencer) is not a --set name."""
    hub = str(BIN / "ncii-hub")
    done = _run(hub, "serve", "--data", str(tmp_path / "d"), "--set", "sequencer=false")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "--set takes NAME=VALUE" in done.stderr
