"""Only ``ncii-hub serve`` or ``ncii-hub init`` may create a hub identity (issue 18, finding 3).

Run in the wrong folder, ``ncii-hub keys`` used to create a new log key and master key and
print the new verifier key, which the README feeds into ``--log-key``: a partner or auditor
would then pin a key no hub signs with. Every other subcommand must refuse (exit 2, the
table's row for usage and configuration), name the folder it looked in and say what to do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
HUB = str(BIN / "ncii-hub")
IDENTITY = ("hub.json", "log.key", "master.key", "keys.sqlite3")


def _run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HUB, *argv], capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )


def _partner_keys(tmp_path: Path) -> Path:
    from partner_sdk import init_partner

    init_partner(tmp_path / "p", "p1")
    return tmp_path / "p" / "partner-public.json"


@pytest.mark.parametrize(
    "argv",
    [
        ("keys",),
        ("keys", "--json"),
        ("partner", "list"),
        ("partner", "add", "p1", "--keys", "KEYS"),
        ("partner", "rotate", "p1", "--keys", "KEYS"),
        ("partner", "revoke", "p1"),
        ("submitter", "list"),
        ("review", "list"),
        ("review", "release", "0123"),
    ],
    ids=lambda a: "-".join(x for x in a if x != "KEYS"),
)
def test_no_subcommand_but_serve_or_init_creates_an_identity(
    tmp_path: Path, argv: tuple[str, ...]
) -> None:
    keys = _partner_keys(tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    argv = tuple(str(keys) if a == "KEYS" else a for a in argv)
    done = _run(*argv, cwd=work)  # default --data: ./ncii-hub-data, which does not exist
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert "ncii-hub-data" in done.stderr  # the folder it looked in
    assert "--data" in done.stderr and "ncii-hub init" in done.stderr  # what to do
    assert not (work / "ncii-hub-data").exists()
    explicit = _run(*argv, "--data", str(tmp_path / "none"))
    assert explicit.returncode == 2 and str(tmp_path / "none") in explicit.stderr
    assert not (tmp_path / "none").exists()


def test_a_damaged_identity_is_not_replaced(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    assert _run("init", "--data", str(data)).returncode == 0
    (data / "log.key").unlink()
    done = _run("keys", "--data", str(data))
    assert done.returncode == 5, done.stderr
    assert "log.key" in done.stderr and "Traceback" not in done.stderr
    assert not (data / "log.key").exists()


def test_init_creates_the_identity_once_and_keys_reads_it(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    made = _run("init", "--data", str(data), "--origin", "hub.example.org/ncii", "--json")
    assert made.returncode == 0, made.stderr
    doc = json.loads(made.stdout)
    assert doc["origin"] == "hub.example.org/ncii"
    assert doc["verifier_key"].startswith("hub.example.org/ncii+")
    for name in IDENTITY:
        assert (data / name).exists(), name
    assert (data / "log.key").stat().st_mode & 0o077 == 0
    shown = _run("keys", "--data", str(data))
    assert shown.returncode == 0 and shown.stdout.strip() == doc["verifier_key"]
    before = (data / "log.key").read_bytes()
    again = _run("init", "--data", str(data))
    assert again.returncode == 2 and "already" in again.stderr, again.stderr
    assert (data / "log.key").read_bytes() == before
    plain = _run("init", "--data", str(tmp_path / "other"))
    assert plain.returncode == 0 and plain.stdout.strip().startswith("localhost/ncii-hub+")
