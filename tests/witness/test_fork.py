"""A hub that forks its log after size 4 (a second hub process started from a copy of its
data, same log key, different entries): both witnesses refuse to cosign the fork (409 at the
size they hold, 422 beyond it), a quorum partner refuses it, the monitor alerts, and
``ncii-audit compare`` proves the fork from two partners' stored checkpoints."""

from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubkit import HubProcess
from witkit import FAST, Witnessed, WitnessedFactory, cosigned_by, grow, new_partner, stored_note

from auditor.cli import main as audit_main
from crypto.checkpoint import open_checkpoint
from crypto.keys import parse_verifier_key
from partner_sdk import Partner
from partner_sdk.errors import WitnessQuorumError


def wait_refusal(hub: HubProcess, statuses: set[int], timeout: float = 20.0) -> list[Any]:
    """Until every witness of ``hub`` reports a last_status in ``statuses``."""
    deadline = time.monotonic() + timeout
    while True:
        rows: list[Any] = httpx.get(hub.url + "/v1/witnesses").json()["witnesses"]
        if all(r["last_status"] in statuses for r in rows):
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.05)


def root_of(note: bytes) -> bytes:
    return base64.b64decode(note.split(b"\n")[2])


def audit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = audit_main(list(args))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def start_fork(kit: Witnessed, tmp_path: Path) -> HubProcess:
    """Stop the hub at its current size, copy its data, restart it, start the copy."""
    assert kit.hub.terminate() == 0  # a graceful stop (README "Exit codes")
    fork_dir = tmp_path / "fork"
    shutil.copytree(kit.hub.data_dir, fork_dir)
    kit.hub.start()
    fork = HubProcess(fork_dir, f"sqlite:///{fork_dir / 'hub.sqlite3'}", ())
    fork.extra_args = (*FAST, *kit.witness_args())
    return fork


def test_fork_is_refused_alerted_and_proven(
    witnessed: WitnessedFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = witnessed()
    k1, k2 = kit.witness_keys
    p1 = new_partner(kit, tmp_path, "p1")  # requires 2 of 2, follows the honest hub
    p2 = new_partner(kit, tmp_path, "p2")  # no witness policy, will follow the fork
    cosigned_by(kit.hub, grow(kit.hub, 4), 2)
    fork = start_fork(kit, tmp_path)
    try:
        # The honest hub grows to 10, cosigned; p1 trusts it.
        cosigned_by(kit.hub, grow(kit.hub, 6), 2)
        with Partner(p1, kit.hub.url, kit.log_key, witnesses=[k1, k2], quorum=2) as partner:
            assert partner.sync().checkpoint_size == 10
        honest = stored_note(p1)

        # The fork signs another tree of size 10: each witness holds 10 with another root, so
        # after the 409 that tells the fork "10", the retry from 10 gets 409 again.
        fork.start()
        assert grow(fork, 6) == 10
        rows = wait_refusal(fork, {409})
        assert all("fork" in r["last_error"] and r["cosigned_size"] == 4 for r in rows)
        forked = httpx.get(fork.url + "/checkpoint").content
        assert forked.count(b"\n\xe2\x80\x94 ") == 1  # the log's signature only
        assert root_of(forked) != root_of(honest)

        # p2 (no policy) takes the fork and stores its checkpoint; p1 (2 of 2) refuses it.
        with Partner(p2, fork.url, kit.log_key) as partner:
            assert partner.sync().checkpoint_size == 10
        with (
            Partner(p1, fork.url, kit.log_key, quorum_wait=0.3) as partner,
            pytest.raises(WitnessQuorumError) as info,
        ):
            partner.sync()
        assert info.value.missing == ("w1.example", "w2.example")
        assert stored_note(p1) == honest

        # Beyond the witnesses' size the fork's consistency proof cannot verify: 422.
        assert grow(fork, 2) == 12
        wait_refusal(fork, {422})
        for w in kit.witnesses:
            held = httpx.get(f"{w.url}/checkpoint/{kit.origin}").content
            assert held.split(b"\n")[:3] == honest.split(b"\n")[:3]

        # The monitor that followed the honest hub alerts on the fork.
        state = tmp_path / "monitor"
        base = ["monitor", "--log-key", kit.log_key, "--state", str(state), "--once", "--json"]
        code, result = audit(capsys, *base, "--log", kit.hub.url)
        assert code == 0 and result["size"] == 10, result
        code, result = audit(capsys, *base, "--log", fork.url)
        assert code == 1 and result["alert"]["alert"] == "inconsistent", result

        # compare proves the fork from the two partners' stored checkpoints alone.
        a, b = tmp_path / "p1-checkpoint", tmp_path / "p2-checkpoint"
        a.write_bytes(honest)
        b.write_bytes(stored_note(p2))
        code, evidence = audit(capsys, "compare", str(a), str(b), "--log-key", kit.log_key)
        assert code == 1 and evidence["verdict"] == "fork", evidence
        (proof,) = evidence["forks"]
        assert proof["kind"] == "same_size" and proof["size"] == 10
        key = parse_verifier_key(evidence["log_key"])
        roots = {
            open_checkpoint(
                proof[s]["note"].encode(), [key], origin=kit.origin
            ).checkpoint.root_hash
            for s in ("first", "second")
        }
        assert len(roots) == 2
    finally:
        fork.kill()
