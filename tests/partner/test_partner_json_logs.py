"""``--log-format json`` over a walkthrough against a real hub: a person's case is submitted,
``ncii-partner sync`` (a subprocess) verifies and stores it, ``ncii-partner serve`` matches its
hashes, a sync fails once the hub is gone. Every stderr line of the partner daemons is one
JSON object, and no hash value, case id or recovery code appears in any of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from feedkit import FeedKit
from hubkit import Case, mixed_hashes, post, wait_for_size
from matchkit import JSON_HEADERS, MatchService

ROOT = Path(__file__).resolve().parents[2]


def partner(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "partner_sdk.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


def records(text: str) -> list[dict[str, Any]]:
    out = [json.loads(line) for line in text.splitlines() if line.strip()]
    for record in out:
        assert {"time", "level", "logger", "message"} <= set(record), record
    return out


def test_partner_daemons_log_json_without_secrets(kit: FeedKit, tmp_path: Path) -> None:
    directory = kit.new_partner("jsonlogs")
    case = Case()
    hashes = mixed_hashes(8)
    with kit.hub.client() as client:
        assert post(client, "/v1/submissions", case.submission(hashes)).status_code == 202
        wait_for_size(client, 8)
    kit.wait_sealed(8)

    sync = partner(
        "sync",
        "--dir",
        str(directory),
        "--hub",
        kit.hub.url,
        "--log-key",
        kit.log_key,
        "--log-format",
        "json",
    )
    assert sync.returncode == 0, sync.stderr
    logged = records(sync.stderr)
    (synced,) = [r for r in logged if r["message"] == "synced"]
    assert synced["entries"] == 8 and synced["cursor"] == 8 and synced["checkpoint_size"] == 8
    assert "synced 8 entries" in sync.stdout  # the summary for people stays on stdout

    service = MatchService(directory, extra_args=("--log-format", "json")).start()
    try:
        c = httpx.Client(base_url=service.url, timeout=30)
        for item in hashes:
            if item["algorithm"] in ("pdq", "md5", "sha256"):
                r = c.post("/v1/match/hash", json=item, headers=JSON_HEADERS)
                assert r.status_code == 200 and len(r.json()["matches"]) == 1
        assert (
            c.post("/v1/match/hash", json={"algorithm": "pdq"}, headers=JSON_HEADERS).status_code
            == 400
        )
    finally:
        service.stop()
    serve_log = service.output()
    assert any("matching on" in r["message"] for r in records(serve_log))

    kit.hub.kill()
    failed = partner("sync", "--dir", str(directory), "--log-format", "json")
    assert failed.returncode == 3
    (error,) = [r for r in records(failed.stderr) if r["level"] == "warning"]
    assert error["exit_status"] == 3 and error["error"]

    everything = sync.stderr + sync.stdout + serve_log + failed.stderr + failed.stdout
    secrets_used = [case.case_id, case.secret.recovery_code()]
    for item in hashes:
        secrets_used += [item["hash"]] if "hash" in item else [f["hash"] for f in item["frames"]]
    assert secrets_used
    for value in secrets_used:
        assert value not in everything
