"""``ncii-hub sequence`` beside ``ncii-hub serve --no-sequencer`` (issue 17: use both cores),
on SQLite and PostgreSQL: the HTTP process only accepts; the other one sequences, publishes
and seals the feed; one log, no duplicates, no gaps; SIGTERM and SIGINT stop it as they stop
``serve``; a second ``sequence`` stands by and takes over when the first one dies; a folder
with no hub is refused and left untouched."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from hubkit import (
    PROJECT_ROOT,
    Case,
    HubFactory,
    HubProcess,
    SequenceProcess,
    mixed_hashes,
    post,
    verifier_of,
    verify_log,
)
from hubkit import wait_for_size as wait_for_log_size

from crypto.merkle import leaf_hash


def _submit(hub: HubProcess, cases: list[Case], n: int) -> list[str]:
    accepted: list[str] = []
    with hub.client() as client:
        for case in cases:
            r = post(client, "/v1/submissions", case.submission(mixed_hashes(n)))
            assert r.status_code == 202, r.text
            accepted += [e["leaf_hash"] for e in r.json()["entries"]]
    return accepted


def test_sequence_beside_serve_makes_one_log_and_seals_the_feed(
    hub_factory: HubFactory, database_url: str
) -> None:
    web = hub_factory("--no-sequencer")  # creates the hub; accepts, never sequences
    seq = SequenceProcess(web.data_dir, database_url)
    try:
        seq.wait_for("sequencer lock acquired")
        accepted = _submit(web, [Case() for _ in range(8)], 5)
        with web.client() as client:
            wait_for_log_size(client, 40)
            key, origin = verifier_of(client)
            log = verify_log(client, key, origin)
        assert sorted(leaf_hash(x).hex() for x in log.leaves) == sorted(accepted)
        feed = web.data_dir / "feed"
        deadline = time.monotonic() + 20
        while not any(feed.iterdir()):
            assert time.monotonic() < deadline, "the sequence process sealed no feed batch"
            time.sleep(0.05)
        assert seq.stop(signal.SIGTERM) == 0
        assert "stopped (SIGTERM); every accepted submission is kept" in seq.output()
        assert "Traceback" not in seq.output()
        # Accepted while nobody sequences: kept, and sequenced by the next one to start.
        later = _submit(web, [Case()], 3)
        again = SequenceProcess(web.data_dir, database_url)
        try:
            again.wait_for("sequencer lock acquired")
            with web.client() as client:
                wait_for_log_size(client, 43)
                log = verify_log(client, key, origin)
            assert sorted(leaf_hash(x).hex() for x in log.leaves) == sorted(accepted + later)
            assert again.stop(signal.SIGINT) == 130
            assert "interrupted" in again.output() and "Traceback" not in again.output()
        finally:
            again.kill()
    finally:
        seq.kill()


def test_a_second_sequence_stands_by_and_takes_over(
    hub_factory: HubFactory, database_url: str
) -> None:
    web = hub_factory("--no-sequencer")
    first = SequenceProcess(web.data_dir, database_url)
    second = SequenceProcess(web.data_dir, database_url)
    try:
        deadline = time.monotonic() + 30
        while not any("sequencer lock acquired" in s.output() for s in (first, second)):
            assert time.monotonic() < deadline, first.output() + second.output()
            time.sleep(0.05)
        leader, standby = (first, second)
        if "sequencer lock acquired" not in first.output():
            leader, standby = second, first
        accepted = _submit(web, [Case() for _ in range(3)], 4)
        with web.client() as client:
            wait_for_log_size(client, 12)
        assert "sequencer lock acquired" not in standby.output()  # one sequencer at a time
        leader.kill()  # a crash: no cleanup
        standby.wait_for("sequencer lock acquired")
        accepted += _submit(web, [Case() for _ in range(2)], 4)
        with web.client() as client:
            wait_for_log_size(client, 20)
            key, origin = verifier_of(client)
            log = verify_log(client, key, origin)
        assert sorted(leaf_hash(x).hex() for x in log.leaves) == sorted(accepted)
    finally:
        first.kill()
        second.kill()


def test_a_folder_without_a_hub_is_refused_and_left_empty(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-hub"
    folder.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "sequence", "--data", str(folder)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "no hub in" in done.stderr and "ncii-hub init" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(folder.iterdir()) == []
