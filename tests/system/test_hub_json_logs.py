"""A whole walkthrough with JSON logs, then every log line of every process is searched for
what must never be logged (issue 18, "Structured logs").

Real processes: ``ncii-hub serve --log-format json``; ``ncii-client`` creates a case, submits
three photos, asks their status and withdraws one entry; ``ncii-partner sync --log-format json``
runs before and after the withdrawal; ``ncii-partner serve --log-format json`` matches one of
the hashes. Every hub and partner log line must be one JSON object, and none of them may hold
a hash value (hex or base64), the case id, an entry id or the recovery code.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from hubkit import HubFactory, verifier_of
from syskit import FEED_FAST, NO_LIMITS, new_partner, sealed_through, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "partner"))

from clientkit import make_photos, run_cli
from matchkit import JSON_HEADERS, MatchService

ROOT = Path(__file__).resolve().parents[2]
STDOUT_LINES = ("ncii-hub: log ", "verifier key: ")  # printed for people on stdout, not logs


def partner_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "partner_sdk.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def json_records(text: str, allowed_plain: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(allowed_plain):
            continue
        record = json.loads(line)  # every log line is one JSON object
        assert {"time", "level", "logger", "message"} <= set(record), record
        out.append(record)
    return out


def stored_hashes(directory: Path) -> list[bytes]:
    conn = sqlite3.connect(f"file:{directory / 'store.sqlite3'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT hash FROM entries WHERE hash IS NOT NULL").fetchall()
        rows += conn.execute("SELECT hash FROM vpdq_frames").fetchall()
    finally:
        conn.close()
    return [bytes(r[0]) for r in rows]


def spellings(raw: bytes) -> list[str]:
    """Every way a log could spell these bytes: hex (both cases), base64 (both alphabets)."""
    b64 = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode()
    return [raw.hex(), raw.hex().upper(), b64, b64.rstrip("="), url, url.rstrip("=")]


def test_walkthrough_logs_are_json_and_hold_no_secret(
    sqlite_hub_factory: HubFactory, tmp_path: Path
) -> None:
    hub = sqlite_hub_factory(*FEED_FAST, *NO_LIMITS, "--log-format", "json")
    partner_dir = new_partner(hub, tmp_path / "partner", "jsonlogpartner")
    with hub.client() as client:
        log_key = verifier_of(client)[0].encode()
    home = tmp_path / "home"
    photos = make_photos(tmp_path / "photos", ("astronaut", "camera", "coffee"))

    made = run_cli("case", "new", "--json", home=home)
    assert made.code == 0, made.err
    case = json.loads(made.out)
    case_id, recovery_code = case["case_id"], case["recovery_code"]
    sent = run_cli("submit", *map(str, photos), "--hub", hub.url, "--yes", "--wait", "--json",
                   home=home, subprocess_=True)  # fmt: skip
    assert sent.code == 0, sent.err
    status = run_cli("status", "--json", home=home)
    assert status.code == 0, status.err
    entry_ids = [e["entry_id"] for e in json.loads(status.out)["entries"]]
    assert len(entry_ids) == 9

    wait_until(lambda: sealed_through(hub) >= 9, what="feed sealed for the partner")
    first_sync = partner_cli("sync", "--dir", str(partner_dir), "--hub", hub.url,
                             "--log-key", log_key, "--log-format", "json")  # fmt: skip
    assert first_sync.returncode == 0, first_sync.stderr
    hashes = stored_hashes(partner_dir)
    assert len(hashes) == 9

    md5 = next(
        bytes(r[0])
        for r in sqlite3.connect(f"file:{partner_dir / 'store.sqlite3'}?mode=ro", uri=True)
        .execute("SELECT hash FROM entries WHERE algorithm = 'md5'")
        .fetchall()
    )
    service = MatchService(partner_dir, extra_args=("--log-format", "json")).start()
    try:
        with httpx.Client(base_url=service.url, timeout=30) as c:
            answer = c.post(
                "/v1/match/hash", json={"algorithm": "md5", "hash": md5.hex()}, headers=JSON_HEADERS
            )
            assert answer.status_code == 200 and len(answer.json()["matches"]) == 1
    finally:
        service.stop()

    withdrawn = run_cli("withdraw", entry_ids[0], "--yes", home=home)
    assert withdrawn.code == 0, withdrawn.err
    with hub.client() as client:
        wait_until(lambda: int(client.get("/v1/log").json()["size"]) >= 10, what="tombstone")
    second_sync = partner_cli("sync", "--dir", str(partner_dir), "--log-format", "json")
    assert second_sync.returncode == 0, second_sync.stderr
    hub.terminate()  # logs flushed; the exit status is not this test's subject

    hub_log = hub.output()
    hub_records = json_records(hub_log, STDOUT_LINES)
    assert any(r["logger"] == "ncii.hub.sequencer" for r in hub_records)
    partner_logs = first_sync.stderr + second_sync.stderr + service.output()
    json_records(partner_logs)
    everything = hub_log + partner_logs + first_sync.stdout + second_sync.stdout

    forbidden = [case_id, recovery_code, recovery_code.replace("-", ""), *entry_ids]
    for raw in hashes:
        forbidden += spellings(raw)
    for value in forbidden:
        assert value not in everything, "a secret reached a log"
