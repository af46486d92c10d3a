"""The client's side of issue 13: a helpline's submitter key (``submitter-key new``, ``submit
--submitter-key``) and the person told in plain words that fingerprints are held for review,
against a real hub with admission control on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from clientkit import PROJECT_ROOT, run_cli
from hubkit import HubProcess

# Admission on, with an address allowance smaller than the photos folder (9 fingerprints).
STRICT = ("--set", "admission_control=true", "--set", "anon_hashes_burst=4")


def _new_case(home: Path) -> str:
    result = run_cli("case", "new", "--json", home=home)
    assert result.code == 0, result.err
    return str(json.loads(result.out)["case_id"])


def _hub_cli(hub: HubProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args, "--data", str(hub.data_dir),
         "--database-url", hub.database_url],
        capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=60, check=False,
    )  # fmt: skip


def test_person_is_told_plainly_when_fingerprints_are_held(
    own_hub: Callable[..., HubProcess], photo_dir: Path, tmp_path: Path
) -> None:
    hub = own_hub(*STRICT)
    home = tmp_path / "home"
    _new_case(home)
    sent = run_cli("submit", str(photo_dir), "--hub", hub.url, "--yes", "--wait", home=home)
    assert sent.code == 1, sent.err  # the flat picture is refused; the photos are sent
    assert "held for review" in sent.out
    assert "Not waiting" in sent.out
    status = run_cli("status", home=home)
    assert status.code == 0, status.err
    assert "held for review" in status.out
    as_json = json.loads(run_cli("status", "--json", home=home).out)
    assert {e["state"] for e in as_json["entries"]} == {"held"}

    [item] = json.loads(_hub_cli(hub, "review", "list", "--json").stdout)["held"]
    assert _hub_cli(hub, "review", "reject", item["review_id"]).returncode == 0
    status = run_cli("status", home=home)
    assert "not accepted after review" in status.out


def test_helpline_key_is_private_and_lifts_the_address_limit(
    own_hub: Callable[..., HubProcess], photo_dir: Path, tmp_path: Path
) -> None:
    hub = own_hub(*STRICT)
    key_file = tmp_path / "helpline.key"
    made = run_cli("submitter-key", "new", str(key_file), "--json")
    assert made.code == 0, made.err
    public = json.loads(made.out)["public_key"]
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert run_cli("submitter-key", "new", str(key_file)).code == 2  # never overwritten

    home = tmp_path / "home"
    _new_case(home)
    # Not registered yet: refused clearly (403), nothing stored.
    refused = run_cli("submit", str(photo_dir), "--hub", hub.url, "--yes",
                      "--submitter-key", str(key_file), home=home)  # fmt: skip
    assert refused.code == 4 and "not registered" in refused.err
    added = _hub_cli(hub, "submitter", "add", "helpline-a", f"--public-key={public}")
    assert added.returncode == 0, added.stderr
    sent = run_cli("submit", str(photo_dir), "--hub", hub.url, "--yes", "--wait", "--json",
                   "--submitter-key", str(key_file), home=home)  # fmt: skip
    outcome = json.loads(sent.out)
    assert outcome["held_for_review"] == 0 and outcome["included"] == 9, sent.err

    key_file.chmod(0o644)
    loose = run_cli("submit", str(photo_dir), "--hub", hub.url, "--yes",
                    "--submitter-key", str(key_file), home=home)  # fmt: skip
    assert loose.code == 2 and "chmod 600" in loose.err


def test_person_withdraws_fingerprints_while_they_are_held(
    own_hub: Callable[..., HubProcess], photo_dir: Path, tmp_path: Path
) -> None:
    hub = own_hub(*STRICT)
    home = tmp_path / "home"
    _new_case(home)
    sent = run_cli("submit", str(photo_dir), "--hub", hub.url, "--yes", "--json", home=home)
    assert json.loads(sent.out)["held_for_review"] == 9
    gone = run_cli("withdraw", "--all", "--yes", "--json", home=home)
    assert gone.code == 0, gone.err
    assert len(json.loads(gone.out.splitlines()[0])["held_withdrawn"]) == 9
    entries = json.loads(run_cli("status", "--json", home=home).out)["entries"]
    assert all(e["withdrawn"] and e["hash"] is None for e in entries)
