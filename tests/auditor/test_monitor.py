"""ncii-audit monitor against a real, growing hub and against forked copies of its log."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from auditkit import AUDIT, PROJECT_ROOT, MemLog, Scenario, WebhookSink, grow_hub, run_audit
from hubkit import HubProcess, verifier_of

from auditor.cli import main
from crypto.merkle import verify_consistency


def monitor(
    capsys: pytest.CaptureFixture[str], log: str, vkey: str, state: Path, *extra: str
) -> tuple[int, dict]:
    """One ``ncii-audit monitor --once --json`` round, in process (the real CLI code)."""
    code = main(
        [
            "monitor",
            "--log",
            log,
            "--log-key",
            vkey,
            "--state",
            str(state),
            "--once",
            "--json",
            *extra,
        ]
    )
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_follows_a_growing_hub(
    hub: HubProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with hub.client() as client:
        vkey = verifier_of(client)[0].encode()
    state = tmp_path / "state"
    code, first = monitor(capsys, hub.url, vkey, state)
    assert code == 0 and first["size"] == 0 and first["previous_size"] is None
    sizes = [0]
    for n in (5, 260, 1):
        sizes.append(grow_hub(hub, n))
        code, result = monitor(capsys, hub.url, vkey, state)
        assert code == 0, result
        assert result["status"] == "ok" and result["changed"]
        assert (result["previous_size"], result["size"]) == (sizes[-2], sizes[-1])
    code, result = monitor(capsys, hub.url, vkey, state)
    assert code == 0 and not result["changed"] and result["size"] == sizes[-1]
    history = [json.loads(line) for line in (state / "history.jsonl").read_text().splitlines()]
    assert [h["size"] for h in history] == sizes
    saved = json.loads((state / "monitor.json").read_text())
    assert saved["latest"]["size"] == sizes[-1]
    # The console script itself, once (exit code and text output).
    out = run_audit("monitor", "--log", hub.url, "--log-key", vkey, "--state", str(state), "--once")
    assert out.returncode == 0, out.stderr
    assert f"unchanged at size {sizes[-1]}" in out.stdout


@pytest.fixture
def trusted_state(scenario: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A monitor state that has seen the hub at 3 and then at 303."""
    state = tmp_path / "state"
    assert monitor(capsys, f"file://{scenario.snap3}", scenario.vkey, state)[0] == 0
    code, result = monitor(capsys, scenario.hub.url, scenario.vkey, state)
    assert code == 0 and result["size"] == 303
    return state


def test_alerts_on_a_forked_log_with_evidence(
    scenario: Scenario, trusted_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = WebhookSink()
    try:
        code, result = monitor(
            capsys, scenario.fork_longer.url, scenario.vkey, trusted_state, "--webhook", sink.url
        )
    finally:
        sink.close()
    assert code == 1
    alert = result["alert"]
    assert alert["alert"] == "inconsistent"
    assert sink.received == [alert]
    assert alert["trusted"]["size"] == 303 and alert["served"]["size"] == 403
    # The evidence checks out with crypto/ alone: the proof links a root at 303 to the
    # signed root at 403, and that root is not the one the log signed at 303.
    ev = alert["consistency_proof"]
    implied = base64.b64decode(ev["first_root_in_second_tree"])
    verify_consistency(
        303,
        403,
        [base64.b64decode(h) for h in ev["proof"]],
        implied,
        base64.b64decode(alert["served"]["root"]),
    )
    assert implied != base64.b64decode(alert["trusted"]["root"])
    # The state still holds the last good checkpoint, so the alert repeats.
    assert json.loads((trusted_state / "monitor.json").read_text())["latest"]["size"] == 303
    assert monitor(capsys, scenario.fork_longer.url, scenario.vkey, trusted_state)[0] == 1
    assert len((trusted_state / "alerts.jsonl").read_text().splitlines()) == 2


def test_alerts_on_same_size_fork(
    scenario: Scenario, trusted_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = monitor(capsys, scenario.fork_same.url, scenario.vkey, trusted_state)
    assert code == 1 and result["alert"]["alert"] == "fork"
    assert result["alert"]["served"]["size"] == result["alert"]["trusted"]["size"] == 303


def test_alerts_on_a_shrinking_log(
    scenario: Scenario, trusted_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = monitor(capsys, scenario.rollback.url, scenario.vkey, trusted_state)
    assert code == 1 and result["alert"]["alert"] == "rollback"
    assert result["alert"]["served"]["size"] == 3


def test_alerts_on_a_bad_signature(
    scenario: Scenario, trusted_state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(scenario.hub_copy, bad)
    note = (bad / "checkpoint").read_bytes()
    text, sig = note.rsplit(b" ", 1)
    flipped = bytearray(base64.b64decode(sig))
    flipped[10] ^= 1
    (bad / "checkpoint").write_bytes(text + b" " + base64.b64encode(bytes(flipped)) + b"\n")
    code, result = monitor(capsys, f"file://{bad}", scenario.vkey, trusted_state)
    assert code == 1 and result["alert"]["alert"] == "bad_signature"
    # Signed, but not by the key the monitor trusts (NoKnownSignature): also an alert.
    code, result = monitor(
        capsys, scenario.hub.url, MemLog().vkey, tmp_path / "fresh", "--origin", scenario.origin
    )
    assert code == 1 and result["alert"]["alert"] == "bad_signature"
    assert main(["monitor", "--log", scenario.hub.url, "--log-key", "not-a-key", "--once"]) == 2


def test_alerts_on_tiles_that_do_not_match(
    scenario: Scenario, trusted_state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(scenario.fork_longer.root, bad)
    tile = bad / "tile/0/001.p/147"
    data = bytearray(tile.read_bytes())
    data[0] ^= 1
    tile.write_bytes(bytes(data))
    code, result = monitor(capsys, f"file://{bad}", scenario.vkey, trusted_state)
    assert code == 1 and result["alert"]["alert"] == "bad_tiles"


def test_unreachable_log_is_not_an_alert(
    scenario: Scenario, trusted_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = monitor(capsys, "http://127.0.0.1:9", scenario.vkey, trusted_state)
    assert code == 3
    assert not (trusted_state / "alerts.jsonl").exists()


def test_loop_mode_exits_on_alert(scenario: Scenario, trusted_state: Path) -> None:
    proc = subprocess.run(
        [
            *AUDIT,
            "monitor",
            "--log",
            scenario.fork_same.url,
            "--log-key",
            scenario.vkey,
            "--state",
            str(trusted_state),
            "--interval",
            "0.1",
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "ALERT fork" in proc.stderr


def test_state_is_locked_and_bound_to_one_log(
    scenario: Scenario, trusted_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = MemLog()
    assert (
        main(
            [
                "monitor",
                "--log",
                scenario.hub.url,
                "--log-key",
                other.vkey,
                "--state",
                str(trusted_state),
                "--once",
            ]
        )
        == 2
    )
    (trusted_state / "monitor.json").write_text("{not json")
    assert (
        main(
            [
                "monitor",
                "--log",
                scenario.hub.url,
                "--log-key",
                scenario.vkey,
                "--state",
                str(trusted_state),
                "--once",
            ]
        )
        == 2
    )


def test_a_checkpoint_not_yet_cosigned_is_pending_not_an_alert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hub publishes first and attaches cosignatures tens of ms later: a monitor that
    reads in between must wait, not alert; a cosignature that fails to verify still alerts."""
    from auditkit import extend_log

    from crypto.cosignature import add_cosignature
    from crypto.keys import ALG_COSIGNATURE_V1, signer_key_from_seed

    log = MemLog()
    witness = signer_key_from_seed("witness.example/w1", b"\x09" * 32, ALG_COSIGNATURE_V1)
    wkey = witness.verifier.encode()
    root, state = tmp_path / "log", tmp_path / "state"
    root.mkdir()

    def cosigned(note: bytes) -> bytes:
        return add_cosignature(note, witness, timestamp=1_700_000_000)

    extend_log(root, 0, [b"a", b"b", b"c"], log.key, log.origin)
    (root / "checkpoint").write_bytes(cosigned((root / "checkpoint").read_bytes()))
    code, result = monitor(capsys, f"file://{root}", log.vkey, state, "--witness-key", wkey)
    assert code == 0 and result["size"] == 3
    # Size 5 published, not yet cosigned: pending, the trusted state stays at 3.
    bare = extend_log(root, 3, [b"d", b"e"], log.key, log.origin)
    code, result = monitor(capsys, f"file://{root}", log.vkey, state, "--witness-key", wkey)
    assert code == 0 and result["status"] == "pending" and result["alert"] is None
    assert result["size"] == 3
    assert json.loads((state / "monitor.json").read_text())["latest"]["size"] == 3
    assert not (state / "alerts.jsonl").exists()
    # The cosignature arrives: the next round moves on.
    (root / "checkpoint").write_bytes(cosigned(bare))
    code, result = monitor(capsys, f"file://{root}", log.vkey, state, "--witness-key", wkey)
    assert code == 0 and result["status"] == "ok" and result["size"] == 5
    # A cosignature by the configured witness that does not verify: alert.
    good = cosigned(bare)
    head, sig = good.rstrip(b"\n").rsplit(b" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 1
    (root / "checkpoint").write_bytes(head + b" " + base64.b64encode(bytes(raw)) + b"\n")
    code, result = monitor(capsys, f"file://{root}", log.vkey, state, "--witness-key", wkey)
    assert code == 1 and result["alert"]["alert"] == "bad_signature"
    # A bad log signature with no cosignature: still an alert, not "pending".
    head, sig = bare.rstrip(b"\n").rsplit(b" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 1
    (root / "checkpoint").write_bytes(head + b" " + base64.b64encode(bytes(raw)) + b"\n")
    code, result = monitor(capsys, f"file://{root}", log.vkey, state, "--witness-key", wkey)
    assert code == 1 and result["alert"]["alert"] == "bad_signature"
