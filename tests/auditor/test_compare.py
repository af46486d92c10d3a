"""ncii-audit compare: prove a fork from checkpoints gathered at several vantage points."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from auditkit import Scenario, run_audit

from auditor.cli import main
from crypto.checkpoint import open_checkpoint
from crypto.keys import parse_verifier_key
from crypto.merkle import verify_consistency


def compare(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["compare", *args])
    return code, json.loads(capsys.readouterr().out)


def save(tmp_path: Path, name: str, note: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(note)
    return str(path)


def test_same_size_fork_from_two_files(
    scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two partners stored checkpoints of one size with two roots: a fork, no log needed."""
    a = save(tmp_path, "partner-a", scenario.note303)
    b = save(tmp_path, "partner-b", (scenario.fork_same.root / "checkpoint").read_bytes())
    out_file = tmp_path / "evidence.json"
    code, evidence = compare(capsys, a, b, "--log-key", scenario.vkey, "--output", str(out_file))
    assert code == 1 and evidence["verdict"] == "fork", evidence
    assert json.loads(out_file.read_text()) == evidence
    (fork,) = evidence["forks"]
    assert fork["kind"] == "same_size" and fork["size"] == 303
    # Publishable: both notes verify with the log key alone and disagree at one size.
    key = parse_verifier_key(evidence["log_key"])
    cps = [
        open_checkpoint(fork[s]["note"].encode(), [key], origin=evidence["origin"]).checkpoint
        for s in ("first", "second")
    ]
    assert cps[0].size == cps[1].size and cps[0].root_hash != cps[1].root_hash


def test_inconsistent_sizes_proven_from_the_log(
    scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = save(tmp_path, "partner-a", scenario.note303)
    b = save(tmp_path, "partner-b", (scenario.fork_longer.root / "checkpoint").read_bytes())
    code, evidence = compare(
        capsys, a, b, "--log-key", scenario.vkey, "--log", scenario.fork_longer.url
    )
    assert code == 1
    (fork,) = evidence["forks"]
    assert fork["kind"] == "inconsistent"
    assert (fork["first"]["size"], fork["second"]["size"]) == (303, 403)
    ev = fork["consistency_proof"]
    implied = base64.b64decode(ev["first_root_in_second_tree"])
    verify_consistency(
        303,
        403,
        [base64.b64decode(h) for h in ev["proof"]],
        implied,
        base64.b64decode(fork["second"]["root"]),
    )
    assert implied != base64.b64decode(fork["first"]["root"])


def test_consistent_sources_pass(scenario: Scenario, tmp_path: Path) -> None:
    a = save(tmp_path, "early", scenario.note3)
    b = save(tmp_path, "late", scenario.note303)
    out = run_audit(
        "compare",
        a,
        b,
        f"{scenario.hub.url}/checkpoint",
        "--log-key",
        scenario.vkey,
        "--log",
        scenario.hub.url,
    )
    assert out.returncode == 0, out.stderr
    evidence = json.loads(out.stdout)
    assert evidence["verdict"] == "consistent" and evidence["forks"] == []
    assert sorted(c["size"] for c in evidence["checkpoints"]) == [3, 303, 303, 303]


def test_different_sizes_without_a_log_are_undetermined(
    scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = save(tmp_path, "early", scenario.note3)
    b = save(tmp_path, "late", scenario.note303)
    code, evidence = compare(capsys, a, b, "--log-key", scenario.vkey)
    assert code == 3 and evidence["verdict"] == "incomplete"
    assert evidence["undetermined"] == [{"first": a, "second": b}]


def test_unverifiable_sources_are_rejected_not_evidence(
    scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = save(tmp_path, "good", scenario.note303)
    forged = save(tmp_path, "forged", scenario.note303.replace(b"303\n", b"304\n", 1))
    garbage = save(tmp_path, "garbage", b"\xff\x00not a note")
    code, evidence = compare(capsys, good, forged, garbage, "--log-key", scenario.vkey)
    assert code == 3 and evidence["forks"] == []
    assert [r["source"] for r in evidence["rejected"]] == [forged, garbage]
    assert main(["compare", str(tmp_path / "missing"), "--log-key", scenario.vkey]) == 3
