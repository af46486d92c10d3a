"""Low-latency feed (issue 17) over real HTTP with real hub processes, on SQLite and PostgreSQL:
the long-poll batch listing, short batches merged into aligned ones, and
``ncii-partner sync --follow`` (new entries matchable within seconds, an ALERT and exit 1 on a
verification failure, backoff while the hub is down, a clean stop on SIGTERM)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from feedkit import FEED_FAST, FeedKit
from hubkit import Case, HubProcess, mixed_hashes, post, wait_for_size
from sqlalchemy import select

from hub.db.models import FeedBatchRow, table_of

ROOT = Path(__file__).resolve().parents[2]


def follower(
    kit: FeedKit, directory: Path, *extra: str, stderr: Any = subprocess.PIPE
) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "partner_sdk.cli",
            "sync",
            "--follow",
            "--log-format",
            "json",
            "--dir",
            str(directory),
            "--hub",
            kit.hub.url,
            "--log-key",
            kit.log_key,
            "--wait",
            "20",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def store_has(directory: Path, algorithm: str, value: bytes) -> bool:
    path = directory / "store.sqlite3"
    if not path.exists():
        return False
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute(
            "SELECT 1 FROM entries WHERE algorithm = ? AND hash = ?", (algorithm, value)
        ).fetchone()
    except sqlite3.OperationalError:
        return False  # the schema is being created
    finally:
        conn.close()
    return row is not None


def cursor_of(directory: Path) -> int:
    path = directory / "store.sqlite3"
    if not path.exists():
        return -1
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return int(conn.execute("SELECT cursor FROM sync_state").fetchone()[0])
    except sqlite3.OperationalError:
        return -1
    finally:
        conn.close()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"{what} not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - began


def log_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def submit(kit: FeedKit, hashes: list[dict[str, Any]]) -> None:
    with kit.hub.client() as client:
        r = post(client, "/v1/submissions", Case().submission(hashes))
        assert r.status_code == 202, r.text


def test_follow_makes_a_new_submission_matchable_within_seconds_and_stops_on_sigterm(
    kit: FeedKit,
) -> None:
    a = kit.new_partner("alpha")
    submit(kit, mixed_hashes(3))
    with kit.hub.client() as client:
        wait_for_size(client, 3)
    proc = follower(kit, a)
    try:
        wait_until(lambda: cursor_of(a) == 3, 30, "the first sync")
        latencies = []
        for _ in range(3):
            h = mixed_hashes(3)[1]  # an MD5 hash
            assert h["algorithm"] == "md5"
            t0 = time.monotonic()
            submit(kit, [h])
            wait_until(lambda h=h: store_has(a, "md5", bytes.fromhex(h["hash"])), 10, "matchable")
            latencies.append(time.monotonic() - t0)
        # Generous for a loaded test machine; bench/bench_feed_latency.py measures it properly.
        assert max(latencies) < 10
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    lines = log_lines(err)
    assert any(line["message"] == "stopped" for line in lines)
    synced = [line for line in lines if line["message"].startswith("synced")]
    assert synced and synced[-1]["cursor"] == 6 and synced[-1]["level"] == "info"
    assert not any(line["level"] in ("error", "critical") for line in lines)


def test_follow_backs_off_while_the_hub_is_down_and_alerts_on_a_verification_failure(
    kit: FeedKit, tmp_path: Path
) -> None:
    a = kit.new_partner("alpha")
    submit(kit, mixed_hashes(2))
    with kit.hub.client() as client:
        wait_for_size(client, 2)
    log = tmp_path / "follow.log"  # its stderr, read while it runs
    with open(log, "w") as out:
        proc = follower(kit, a, "--max-backoff", "2", stderr=out)
    impostor: HubProcess | None = None

    def retries() -> list[dict[str, Any]]:
        text = log.read_text()
        lines = log_lines(text[: text.rfind("\n") + 1])  # whole lines only
        return [line for line in lines if line["level"] == "warning" and "retry_in" in line]

    try:
        wait_until(lambda: cursor_of(a) == 2, 30, "the first sync")
        kit.hub.kill()
        # A few failed attempts, each after a pause; the third pause (1 s doubled twice) is
        # the first the 2 s cap bounds.
        wait_until(lambda: len(retries()) >= 3, 30, "three failed attempts")
        assert proc.poll() is None  # a hub that is down is retried, not fatal
        # Another hub (another log key) answers on the same address: its checkpoint does
        # not verify under the pinned key.
        impostor = HubProcess(
            tmp_path / "impostor",
            f"sqlite:///{tmp_path}/impostor.sqlite3",
            FEED_FAST,
            port=kit.hub.port,
        ).start()
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if impostor is not None:
            impostor.kill()
    err = log.read_text()
    assert proc.returncode == 1, err
    lines = log_lines(err)
    assert all(0 < line["retry_in"] <= 2 for line in retries())
    alert = lines[-1]
    assert alert["level"] == "critical" and alert["message"].startswith("ALERT")
    assert alert["error"] == "CheckpointSignatureError" and alert["exit_status"] == 1
    assert cursor_of(a) == 2  # nothing of the impostor's was applied


def test_long_poll_answers_when_a_batch_is_sealed_and_empty_after_its_wait(kit: FeedKit) -> None:
    a = kit.new_partner("alpha")
    submit(kit, mixed_hashes(2))
    with kit.hub.client() as client:
        wait_for_size(client, 2)
    kit.wait_sealed(2)
    with kit.partner(a) as p:
        assert p.sync().cursor == 2
        t0 = time.monotonic()
        _, refs, _ = p.client.batches(2, 10, wait=1)
        assert refs == [] and 0.9 < time.monotonic() - t0 < 10
        submit(kit, mixed_hashes(1))
        t0 = time.monotonic()
        _, refs, _ = p.client.batches(2, 10, wait=30)
        assert [(r.start, r.end) for r in refs] == [(2, 3)]
        assert time.monotonic() - t0 < 10
        # Something past the cursor already: answered at once.
        t0 = time.monotonic()
        _, refs, _ = p.client.batches(0, 10, wait=30)
        assert refs and time.monotonic() - t0 < 5
    with kit.hub.client() as client:
        # 61 s is refused by the hub (bounded waits); the SDK never sends it.
        r = client.get("/v1/feed/batches?cursor=0&wait=61")
        assert r.status_code == 400


@pytest.fixture
def merging_kit(feed_hub_factory: Callable[..., HubProcess], tmp_path: Path) -> Any:
    k = FeedKit(feed_hub_factory("--set", "feed_compact_age=0"), tmp_path)
    yield k
    k.close()


def test_short_batches_merge_into_aligned_ones_and_partners_mid_batch_catch_up(
    merging_kit: FeedKit,
) -> None:
    kit = merging_kit
    a, b = kit.new_partner("alpha"), kit.new_partner("beta")
    submit(kit, mixed_hashes(3))
    with kit.hub.client() as client:
        wait_for_size(client, 3)
    kit.wait_sealed(3)
    with kit.partner(a) as p:
        assert p.sync().cursor == 3  # a short batch [0, 3)
    submit(kit, mixed_hashes(9))  # fills [0, 8) and starts [8, 16)
    with kit.hub.client() as client:
        wait_for_size(client, 12)
    kit.wait_sealed(12)
    batches = table_of(FeedBatchRow)
    deadline = time.monotonic() + 20
    while True:
        with kit.engine.connect() as conn:
            ranges = [
                (int(r[0]), int(r[1]))
                for r in conn.execute(
                    select(batches.c.start, batches.c.end).order_by(batches.c.start)
                )
            ]
        if ranges[0] == (0, 8):
            break
        assert time.monotonic() < deadline, ranges
        time.sleep(0.1)
    assert ranges[-1][1] == 12 and all(x[1] == y[0] for x, y in itertools.pairwise(ranges))
    with kit.partner(a) as p:
        s = p.sync()  # cursor 3 lies inside [0, 8): verified whole, applied from 3
        assert s.cursor == 12 and s.entries == 9
        held_a = p.store.live_hashes()
    with kit.partner(b) as p:
        assert p.sync().cursor == 12
        assert p.store.live_hashes() == held_a


def test_withdrawals_late_partners_and_shredding_hold_with_merged_batches(
    merging_kit: FeedKit,
) -> None:
    """The feed's end-to-end withdrawal scenario on a hub that merges short batches at once:
    re-seals and merges interleave, partners converge, no stale ciphertext or key remains."""
    from test_feed_e2e import test_two_partners_converge_late_partner_and_withdrawals as scenario

    scenario(merging_kit)
