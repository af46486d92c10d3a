"""ncii-partner sync with a witness quorum: accepts 2 of 2, refuses (naming the missing
witness) while one is down, falls back to the newest fully cosigned checkpoint when behind,
and recovers once the hub's retries reach the restarted witness."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from witkit import Witnessed, WitnessedFactory, cosigned_by, grow, new_partner, stored_note

import partner_sdk.cli as partner_cli
from crypto.cosignature import open_cosigned_checkpoint
from crypto.keys import ALG_COSIGNATURE_V1, parse_verifier_key, signer_key_from_seed
from partner_sdk import Partner, init_partner
from partner_sdk.errors import UsageError, WitnessQuorumError
from partner_sdk.witnesses import POLICY_FILE


def sync_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = partner_cli.main(["sync", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def wait_witness_failing(kit: Witnessed, name: str, timeout: float = 20.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        status = httpx.get(kit.hub.url + "/v1/witnesses").json()
        row: dict[str, object] = next(w for w in status["witnesses"] if w["name"] == name)
        if row["failures"] and row["last_error"]:
            return row
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def test_quorum_two_of_two(
    witnessed: WitnessedFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = witnessed()
    k1, k2 = kit.witness_keys
    p1 = new_partner(kit, tmp_path, "p1")
    p2 = new_partner(kit, tmp_path, "p2")
    size = grow(kit.hub, 5)
    cosigned_by(kit.hub, size, 2)

    # 2 of 2: syncs; the store keeps the cosigned checkpoint; the policy is remembered.
    code, summary = sync_cli(
        capsys, "--dir", str(p1), "--hub", kit.hub.url, "--log-key", kit.log_key,
        "--witness", k1, "--witness", k2, "--quorum", "2",
    )  # fmt: skip
    assert code == 0, summary
    assert (summary["checkpoint_size"], summary["cosignatures"], summary["cursor"]) == (5, 2, 5)
    policy = json.loads((p1 / POLICY_FILE).read_text())
    assert policy == {"v": 1, "quorum": 2, "witnesses": [k1, k2]}
    wkeys = [parse_verifier_key(k) for k in (k1, k2)]
    log_key = parse_verifier_key(kit.log_key)
    open_cosigned_checkpoint(stored_note(p1), log_key, wkeys, origin=kit.origin, quorum=2)

    # w2 goes down: the log keeps growing and w1 keeps cosigning; the hub reports w2's error.
    kit.witnesses[1].kill()
    size2 = grow(kit.hub, 3)
    cosigned_by(kit.hub, size2, 1)
    row = wait_witness_failing(kit, "w2")
    assert row["cosigned_size"] == size and row["last_status"] is None

    # Refused with the remembered policy (no flags), naming the missing witness; nothing applied.
    code, out = sync_cli(capsys, "--dir", str(p1), "--quorum-wait", "0.3")
    assert code == 1 and out["error"] == "WitnessQuorumError", out
    with Partner(p1, quorum_wait=0.3) as partner, pytest.raises(WitnessQuorumError) as info:
        partner.sync()
    assert info.value.missing == ("w2.example",) and (info.value.have, info.value.need) == (1, 2)
    assert stored_note(p1).split(b"\n")[1] == str(size).encode()

    # A partner that is behind still advances to the newest checkpoint both witnesses cosigned.
    with Partner(p2, kit.hub.url, kit.log_key, witnesses=[k1, k2], quorum_wait=0.3) as partner:
        result = partner.sync()
    assert (result.checkpoint_size, result.latest_size, result.cosignatures) == (size, size2, 2)

    # 1 of 2 accepts the newest checkpoint.
    with Partner(p1, witnesses=[k1, k2], quorum=1) as partner:
        result = partner.sync()
    assert (result.checkpoint_size, result.cosignatures) == (size2, 1)
    assert json.loads((p1 / POLICY_FILE).read_text())["quorum"] == 1

    # w2 is back: the hub's retries reach it, and 2 of 2 syncs again.
    kit.witnesses[1].start()
    cosigned_by(kit.hub, size2, 2)
    code, summary = sync_cli(capsys, "--dir", str(p2), "--quorum", "2")
    assert code == 0 and summary["checkpoint_size"] == size2, summary


def test_policy_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "p"
    init_partner(directory, "p")
    log_vkey = signer_key_from_seed("log.example", b"\x01" * 32).verifier.encode()
    witness = signer_key_from_seed("w.example", b"\x02" * 32, ALG_COSIGNATURE_V1).verifier.encode()
    cases = {
        "quorum-without-witnesses": ["--quorum", "1"],
        "quorum-above-n": ["--witness", witness, "--quorum", "2"],
        "negative-quorum": ["--witness", witness, "--quorum", "-1"],
        "not-a-key": ["--witness", "nonsense"],
        "log-key-as-witness": ["--witness", log_vkey],
        "same-key-twice": ["--witness", witness, "--witness", witness],
        "bad-wait": ["--witness", witness, "--quorum-wait", "-1"],
    }
    for name, args in cases.items():
        code = partner_cli.main(["sync", "--dir", str(directory), "--hub", "http://127.0.0.1:9",
                                 "--log-key", log_vkey, *args])  # fmt: skip
        assert code == 2, name
        capsys.readouterr()
    assert not (directory / POLICY_FILE).exists()
    (directory / POLICY_FILE).write_text('{"v": 2}')
    with pytest.raises(UsageError):
        Partner(directory, "http://127.0.0.1:9", log_vkey)
