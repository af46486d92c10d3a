"""A new partner's first sync gets everything sealed, and a sync that cannot get everything
logged says so and when it can (issue 18, finding 2).

Before: ``ncii-hub partner add`` only marked the partner; the hub wrapped batch keys for it in
its next sealer round, and the feed stopped at the first batch not wrapped for the asker, so a
sync right after ``add`` got nothing ("synced 0 entries ... cursor 0 of verified checkpoint
9", exit 0). Every test runs a real hub process over real HTTP, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from feedkit import FeedKit
from hubkit import Case, HubProcess, mixed_hashes, post, wait_for_size
from test_partner_cli import hub_cli, partner

# The hub's default round interval (1 s) leaves the window the race needs; entries are
# sealed 0.1 s after they are logged.
SLOW_ROUNDS = ("--set", "batch_interval=1.0")


def _logged(kit: FeedKit, n: int) -> None:
    with kit.hub.client() as client:
        r = post(client, "/v1/submissions", Case().submission(mixed_hashes(n)))
        assert r.status_code == 202, r.text
        wait_for_size(client, n)


def test_first_sync_right_after_add_gets_every_sealed_entry(
    feed_hub_factory: Callable[..., HubProcess], tmp_path: Path
) -> None:
    kit = FeedKit(feed_hub_factory(*SLOW_ROUNDS), tmp_path)
    try:
        _logged(kit, 10)  # batches [0, 8) and [8, 10)
        kit.wait_sealed(10)
        for i in range(8):  # registered and synced at once, as fast as a script can
            directory = kit.new_partner(f"p{i}")
            with kit.partner(directory) as p:
                summary = p.sync()
            assert (summary.entries, summary.cursor, summary.batches) == (10, 10, 2), i
            assert summary.behind == 0 and summary.ready_in is None
    finally:
        kit.close()


def test_first_sync_after_the_real_commands(
    feed_hub_factory: Callable[..., HubProcess], tmp_path: Path
) -> None:
    kit = FeedKit(feed_hub_factory(*SLOW_ROUNDS), tmp_path)
    try:
        _logged(kit, 10)
        kit.wait_sealed(10)
        for i in range(3):
            directory = tmp_path / f"cli-{i}"
            assert partner("init", "--dir", str(directory), "--name", f"c{i}").returncode == 0
            keys = str(directory / "partner-public.json")
            added = hub_cli(kit, "add", f"c{i}", "--keys", keys)
            assert added.returncode == 0, added.stderr
            done = partner(
                "sync", "--dir", str(directory), "--hub", kit.hub.url, "--log-key", kit.log_key
            )
            assert done.returncode == 0, done.stderr
            assert done.stdout.startswith("synced 10 entries in 2 batches"), done.stdout
            assert "cursor 10 of verified checkpoint 10" in done.stdout
            assert "not in the feed yet" not in done.stdout
    finally:
        kit.close()


def test_sync_says_what_is_not_in_the_feed_yet_and_when_it_will_be(
    feed_hub_factory: Callable[..., HubProcess], tmp_path: Path
) -> None:
    # [0, 8) is a full batch (sealed at once); [8, 10) waits feed_max_age = 30 s.
    kit = FeedKit(feed_hub_factory("--set", "feed_max_age=30"), tmp_path)
    try:
        _logged(kit, 10)
        kit.wait_sealed(8)
        directory = kit.new_partner("waiting")
        args = ("sync", "--dir", str(directory), "--hub", kit.hub.url, "--log-key", kit.log_key)
        text = partner(*args)
        assert text.returncode == 0, text.stderr
        assert text.stdout.startswith("synced 8 entries in 1 batches"), text.stdout
        assert "2 logged entries are not in the feed yet" in text.stdout, text.stdout
        assert "within about " in text.stdout and " s" in text.stdout, text.stdout
        as_json = partner(*args, "--json")
        assert as_json.returncode == 0, as_json.stderr
        doc = json.loads(as_json.stdout)
        assert doc["entries"] == 0 and doc["cursor"] == 8 and doc["behind"] == 2
        assert doc["sealed_size"] == 8
        assert 0 < doc["ready_in"] <= 32, doc
        with kit.partner(directory) as p:
            summary = p.sync()
        assert summary.sealed_size == 8 and summary.ready_in is not None
    finally:
        kit.close()
