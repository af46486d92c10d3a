"""SIGKILL of ``ncii-partner sync`` in the middle of a sync: the rerun resumes from the last
committed batch, with no duplicate and no gap, and ends with exactly the store of a partner
that synced cleanly (specs/partner-store.md: cursor and entries commit together per batch)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from hubkit import Case, HubFactory, mixed_hashes, post, verifier_of, wait_for_size
from syskit import (
    FEED_FAST,
    NO_LIMITS,
    PROJECT_ROOT,
    HeaderProxy,
    new_partner,
    run_module,
    sealed_through,
    store_cursor,
    store_rows,
    wait_until,
)


def post_retrying(client: httpx.Client, path: str, body: bytes) -> httpx.Response:
    """POST as a client does (specs/hub-api.md 5): 503 database_unavailable means nothing
    took effect, so the same bytes are sent again. This test's very short rounds once made a
    withdrawal deadlock against a round on PostgreSQL (fixed in hub/storage.py, pinned by
    tests/hub/test_hub_shuffle.py); the subject here is the partner's resume, not intake."""
    for _ in range(5):
        r = post(client, path, body)
        if r.status_code != 503:
            return r
        time.sleep(float(r.headers.get("Retry-After", "1")))
    return r


def test_partner_killed_mid_sync_resumes_without_duplicate_or_gap(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    hub = hub_factory(*FEED_FAST, *NO_LIMITS)
    victim = new_partner(hub, tmp_path / "victim", "victim")
    clean = new_partner(hub, tmp_path / "clean", "clean")
    with hub.client() as client:
        key, _ = verifier_of(client)
        cases = [Case() for _ in range(3)]
        ids: list[str] = []
        for case in cases:
            r = post_retrying(client, "/v1/submissions", case.submission(mixed_hashes(200)))
            assert r.status_code == 202, r.text
            ids += [e["entry_id"] for e in r.json()["entries"]]
        # withdrawals too, so tombstones and redactions are part of what must resume
        r = post_retrying(client, "/v1/withdrawals", cases[0].withdrawal(ids[:20]))
        assert r.status_code == 202, r.text
        r = post_retrying(client, "/v1/withdrawals", cases[1].withdrawal(None))
        assert r.status_code == 202, r.text
        size = wait_for_size(client, 600 + 20 + 200)
    wait_until(lambda: sealed_through(hub) >= size, what="feed sealed through the log")

    # A slow network (30 ms per request) so that the kill lands between batches.
    proxy = HeaderProxy(hub.url, delay=0.03)
    args = ["sync", "--dir", str(victim), "--log-key", key.encode(), "--json"]
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "partner_sdk.cli", *args, "--hub", proxy.url],
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: store_cursor(victim) > 0, timeout=60, what="first batch stored")
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(30)
    finally:
        proxy.close()
    cut = store_cursor(victim)
    assert proc.returncode == -signal.SIGKILL
    assert 0 < cut < size, "the kill must land mid-sync"

    resumed = run_module("partner_sdk.cli", *args, "--hub", hub.url)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["entries"] == size - cut  # resumed at the cursor: nothing fetched twice
    reference = run_module(
        "partner_sdk.cli", "sync", "--dir", str(clean), "--log-key", key.encode(),
        "--json", "--hub", hub.url,
    )  # fmt: skip
    assert reference.returncode == 0, reference.stderr

    got, want = store_rows(victim), store_rows(clean)
    assert got == want
    indexes = [row[0] for row in got["entries"]]
    assert indexes == list(range(size))  # no gap, no duplicate
    assert got["sync_state"][0][2] == size
    # a further sync is a no-op
    again = run_module("partner_sdk.cli", *args, "--hub", hub.url)
    assert again.returncode == 0 and json.loads(again.stdout)["entries"] == 0
