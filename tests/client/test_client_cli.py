"""ncii-client end to end in subprocesses against a real hub (SQLite).

Covers the person's whole path (case, submit a folder, wait, receipts, status, withdraw), the
helpline's offline bundle, and the bad days: a wrong recovery code, a hub that is down, a case
that was withdrawn, and the privacy promise (only fingerprints ever reach the hub).
"""

from __future__ import annotations

import json
import os
import pty
import select
import sys
import time
from pathlib import Path

from clientkit import PROJECT_ROOT, RecordingProxy, make_photos, run_cli
from hubkit import HubProcess

from crypto import envelope
from crypto.case import CaseSecret


def _new_case(home: Path) -> tuple[str, str]:
    result = run_cli("case", "new", "--json", home=home)
    assert result.code == 0, result.err
    record = json.loads(result.out)
    return record["case_id"], record["recovery_code"]


def test_case_new_recover_list_and_a_typo_named(tmp_path: Path) -> None:
    home, other = tmp_path / "home", tmp_path / "other"
    text = run_cli("case", "new", home=home, subprocess_=True)
    assert text.code == 0
    parts = (line.partition(":") for line in text.out.splitlines())
    lines = {k.strip(): v.strip() for k, _, v in parts}
    case_id, code = lines["Case id"], lines["Recovery code"]
    assert "shown only this once" in text.out
    # The case file is private and holds the secret only; the code is shown nowhere else.
    case_file = home / "cases" / f"{case_id}.case"
    assert case_file.stat().st_mode & 0o777 == 0o600
    assert (home.stat().st_mode & 0o777) == 0o700
    assert code not in case_file.read_text()

    # A typo in group 3 is caught before anything else and named.
    groups = code.split("-")
    groups[2] = groups[2][:-1] + ("0" if groups[2][-1] != "0" else "1")
    typo = run_cli("case", "recover", home=other, stdin="-".join(groups) + "\n")
    assert typo.code == 2
    assert "group 3" in typo.err
    assert "-".join(groups) not in typo.err and groups[2] not in typo.err
    assert not list((other / "cases").glob("*.case"))

    # Lower case with spaces is the same code.
    recovered = run_cli(
        "case", "recover", "--json", home=other, stdin=code.lower().replace("-", " ") + "\n"
    )
    assert recovered.code == 0, recovered.err
    assert json.loads(recovered.out) == {"case_id": case_id, "hub": None}
    listed = run_cli("case", "list", "--json", home=other)
    assert [c["case_id"] for c in json.loads(listed.out)] == [case_id]
    assert code not in listed.out + listed.err


def test_recovery_code_is_read_from_standard_input_not_the_command_line(tmp_path: Path) -> None:
    code = CaseSecret(b"\x05" * 16).recovery_code()
    case_id = CaseSecret(b"\x05" * 16).case_id()
    # Piped (a script, a password manager): no prompt, nothing echoed.
    piped = run_cli("case", "recover", home=tmp_path / "a", stdin=code + "\n", subprocess_=True)
    assert piped.code == 0, piped.err
    assert case_id in piped.out and code not in piped.out + piped.err
    # "-" says so explicitly.
    dash = run_cli("case", "recover", "-", "--json", home=tmp_path / "b", stdin=code)
    assert dash.code == 0 and json.loads(dash.out) == {"case_id": case_id, "hub": None}
    # Nothing on standard input: a usage error that says how to give it.
    empty = run_cli("case", "recover", home=tmp_path / "c", stdin="")
    assert empty.code == 2 and "standard input" in empty.err
    too_long = run_cli("case", "recover", home=tmp_path / "c", stdin="A" * 100_000)
    assert too_long.code == 2
    # The old argument form still works for now but warns (ps, shell history) and is deprecated.
    argument = run_cli("case", "recover", code, home=tmp_path / "d")
    assert argument.code == 0 and case_id in argument.out
    assert "deprecated" in argument.err and "history" in argument.err
    assert code not in argument.out + argument.err
    assert "CODE" not in run_cli("case", "recover", "--help").out.split("usage:")[1].split("\n")[0]


def test_recovery_code_prompt_on_a_terminal_does_not_echo(tmp_path: Path) -> None:
    code = CaseSecret(b"\x06" * 16).recovery_code()
    case_id = CaseSecret(b"\x06" * 16).case_id()
    argv = [sys.executable, "-m", "client.cli", "case", "recover", "--home", str(tmp_path)]
    pid, fd = pty.fork()
    if pid == 0:  # the child: a real terminal on stdin/stdout/stderr and as /dev/tty
        os.chdir(PROJECT_ROOT)
        os.execv(sys.executable, argv)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"Recovery code" not in seen:
            assert time.monotonic() < deadline, seen
            if select.select([fd], [], [], 1)[0]:
                seen += os.read(fd, 4096)
        os.write(fd, code.encode() + b"\n")
        while True:
            if not select.select([fd], [], [], 60)[0]:
                break
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert case_id.encode() in seen
    assert code.encode() not in seen  # getpass turned echo off
    assert b"not shown" in seen


def test_commands_need_a_case_and_name_the_choices(tmp_path: Path) -> None:
    home = tmp_path / "home"
    none = run_cli("receipts", "verify", home=home)
    assert none.code == 2 and "case new" in none.err
    first, _ = _new_case(home)
    second, _ = _new_case(home)
    both = run_cli("receipts", "verify", home=home)
    assert both.code == 2 and first in both.err and second in both.err
    unknown = run_cli("receipts", "verify", "--case", "0000000000000000", home=home)
    assert unknown.code == 2
    assert run_cli("receipts", "verify", "--case", first.lower(), home=home).code == 0


def test_full_flow_submit_wait_verify_status_withdraw(
    client_hub: HubProcess, photo_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    case_id, _ = _new_case(home)
    sent = run_cli("submit", str(photo_dir), "--hub", client_hub.url, "--yes", "--wait",
                   "--json", home=home, subprocess_=True)  # fmt: skip
    # The flat picture is refused (exit 1) but the five photos are sent.
    assert sent.code == 1, sent.err
    outcome = json.loads(sent.out)
    states = {Path(f["path"]).name: f["state"] for f in outcome["files"]}
    assert states.pop("blank.png") == "low-quality"
    assert set(states.values()) == {"ready"}
    assert outcome["sent"] == 9 and outcome["included"] == 9 and outcome["pending"] == 0
    assert "too plain" in sent.err

    verified = run_cli("receipts", "verify", "--json", home=home)
    assert verified.code == 0, verified.err
    checks = [json.loads(line) for line in verified.out.splitlines()]
    assert len(checks) == 9 and {c["state"] for c in checks} == {"verified"}

    # Sending the same folder again sends nothing twice.
    again = run_cli("submit", str(photo_dir), "--hub", client_hub.url, "--yes", "--json",
                    home=home)  # fmt: skip
    assert json.loads(again.out)["sent"] == 0 and json.loads(again.out)["already_sent"] == 9

    status = run_cli("status", "--json", home=home)
    assert status.code == 0, status.err
    entries = json.loads(status.out)["entries"]
    assert len(entries) == 9 and all(e["state"] == "integrated" for e in entries)
    first = entries[0]["entry_id"]

    # No --yes and no terminal: a usage error, nothing withdrawn.
    assert run_cli("withdraw", first, home=home).code == 2
    one = run_cli("withdraw", first, "--yes", home=home)
    assert one.code == 0, one.err
    assert "1 withdrawn" in one.out
    status = json.loads(run_cli("status", "--json", home=home).out)
    withdrawn = {e["entry_id"] for e in status["entries"] if e.get("withdrawn")}
    assert withdrawn == {first}

    everything = run_cli("withdraw", "--all", "--yes", home=home)
    assert everything.code == 0, everything.err
    assert "case is closed" in everything.out
    fetched = run_cli("receipts", "fetch", "--json", home=home)
    assert fetched.code == 0, fetched.err
    # A withdrawn case accepts nothing more: a clear message, exit 4 (refused).
    closed = run_cli("submit", str(photo_dir), "--hub", client_hub.url, "--yes", home=home)
    assert closed.code == 4
    assert "withdrawn" in closed.err and "case new" in closed.err
    assert case_id in run_cli("status", home=home).out


def test_tampered_receipt_is_detected(
    client_hub: HubProcess, photo_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    case_id, _ = _new_case(home)
    one = photo_dir / "camera.jpg"
    result = run_cli("submit", str(one), "--hub", client_hub.url, "--yes", "--wait", home=home)
    assert result.code == 0, result.err
    receipts = sorted((home / "cases" / case_id / "receipts").glob("*.json"))
    assert len(receipts) == 3
    record = json.loads(receipts[0].read_text())
    record["log_index"] = record["log_index"] + 1 if record["tree_size"] > 1 else 0
    record["leaf_hash"] = "00" * 32
    receipts[0].write_text(json.dumps(record))
    receipts[1].write_text("{not json")
    checked = run_cli("receipts", "verify", "--json", home=home)
    assert checked.code == 1
    states = [json.loads(line)["state"] for line in checked.out.splitlines()]
    assert sorted(states) == ["failed", "failed", "verified"]
    assert "FAILED" in checked.err


def test_bundle_out_and_upload_from_another_home(client_hub: HubProcess, tmp_path: Path) -> None:
    home, helpline = tmp_path / "home", tmp_path / "helpline"
    case_id, _ = _new_case(home)
    photos = make_photos(tmp_path / "pics", ("coffee", "rocket"))
    bundle = tmp_path / "case.ncii"
    made = run_cli("submit", *map(str, photos), "--out", str(bundle), "--yes", home=home)
    assert made.code == 0, made.err
    data = bundle.read_bytes()
    assert data.startswith(b"NCIIBNDL")
    for photo in photos:  # hashes and signature only: no names, paths or sizes
        assert photo.name.encode() not in data and str(photo.parent).encode() not in data
        assert str(photo.stat().st_size).encode() not in data

    up = run_cli("upload", str(bundle), "--hub", client_hub.url, "--json", home=helpline)
    assert up.code == 0, up.err
    first = json.loads(up.out)
    assert first["case_id"] == case_id and first["sent"] == 6
    assert not list((helpline / "cases").glob("*.case"))  # the helpline holds no secret
    again = run_cli("upload", str(bundle), "--hub", client_hub.url, "--json", home=helpline)
    assert json.loads(again.out)["entries"] == first["entries"]  # idempotent

    # The case holder learns the entries from a signed status query and verifies them.
    fetch = run_cli("receipts", "fetch", "--hub", client_hub.url, home=home)
    assert fetch.code == 0, fetch.err
    verify = run_cli("receipts", "verify", "--json", home=home)
    assert verify.code == 0
    assert len(verify.out.splitlines()) == 6

    damaged = tmp_path / "damaged.ncii"
    damaged.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    bad = run_cli("upload", str(damaged), "--hub", client_hub.url, home=helpline)
    assert bad.code == 2 and "damaged" in bad.err
    missing = run_cli("upload", str(tmp_path / "nope.ncii"), "--hub", client_hub.url)
    assert missing.code == 2


def test_hub_down_is_clear_nothing_lost_and_retry_works(
    recording_proxy: RecordingProxy, tmp_path: Path
) -> None:
    # The proxy drops every connection, as a hub that is down or a network that is gone
    # (the hub behind it keeps its port, so no other process can take it meanwhile).
    home = tmp_path / "home"
    case_id, _ = _new_case(home)
    photos = make_photos(tmp_path / "pics", ("camera",))
    recording_proxy.control.down = True
    down = run_cli("submit", str(photos[0]), "--hub", recording_proxy.url, "--yes", home=home,
                   subprocess_=True)  # fmt: skip
    assert down.code == 3
    assert "could not get an answer" in down.err and "run the same command again" in down.err
    assert len(recording_proxy.control.seen) == 5  # every attempt, then a clear stop
    assert (home / "cases" / f"{case_id}.case").exists()
    assert run_cli("receipts", "verify", home=home).code == 0
    recording_proxy.control.down = False
    retry = run_cli("submit", str(photos[0]), "--hub", recording_proxy.url, "--yes", "--wait",
                    home=home)  # fmt: skip
    assert retry.code == 0, retry.err
    verified = run_cli("receipts", "verify", "--json", home=home)
    assert verified.code == 0 and len(verified.out.splitlines()) == 3


def test_privacy_only_signed_fingerprints_reach_the_hub(
    recording_proxy: RecordingProxy, photo_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    _new_case(home)
    url = recording_proxy.url
    steps = [
        ("submit", str(photo_dir), "--hub", url, "--yes", "--wait"),
        ("receipts", "fetch"),
        ("status",),
        ("withdraw", "--all", "--yes"),
        ("receipts", "fetch"),
    ]
    for step in steps:
        result = run_cli(*step, home=home)
        assert result.code in (0, 1), (step, result.err)
    seen = recording_proxy.control.seen
    assert any(s.path == "/v1/submissions" for s in seen)
    files = sorted(photo_dir.iterdir())
    forbidden_text = [str(photo_dir), photo_dir.name, "private"]
    forbidden_text += [f.name for f in files] + [f.stem for f in files]
    for s in seen:
        blob = s.body + s.path.encode() + repr(sorted(s.headers.items())).encode()
        assert b"\xff\xd8\xff" not in blob and b"\x89PNG" not in blob, s.path
        assert b"Exif" not in blob and b"JFIF" not in blob
        for text in forbidden_text:
            assert text.encode() not in blob, (s.path, text)
        for f in files:
            assert str(f.stat().st_size).encode() not in s.body
        if s.method == "POST":
            assert s.headers["Content-Type"] == "application/vnd.ncii.envelope"
            purpose = {
                "/v1/submissions": "submission",
                "/v1/status": "status-query",
                "/v1/withdrawals": "withdrawal",
            }[s.path]
            opened = envelope.open(s.body, purpose, now=0, window_seconds=2**62)
            body = json.loads(opened.body)
            if purpose == "submission":  # exactly the hub's submission body, nothing more
                assert set(body) == {"v", "hashes"}
                for h in body["hashes"]:
                    assert set(h) <= {"algorithm", "hash", "quality", "frames"}
        else:
            assert s.body == b""
