"""Two hub processes on one database and one data directory: one tree, no duplicates, no gaps."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from hubkit import Case, HubFactory, mixed_hashes, post, verifier_of, verify_log, wait_for_size

from crypto.merkle import leaf_hash


def test_two_processes_one_log(hub_factory: HubFactory) -> None:
    one = hub_factory()
    two = hub_factory(data_dir=one.data_dir)
    cases = [Case() for _ in range(12)]

    def submit(i: int) -> list[str]:
        hub = (one, two)[i % 2]
        with hub.client() as client:
            r = post(client, "/v1/submissions", cases[i].submission(mixed_hashes(5)))
            assert r.status_code == 202, r.text
            return [e["leaf_hash"] for e in r.json()["entries"]]

    with ThreadPoolExecutor(6) as pool:
        accepted = [h for hs in pool.map(submit, range(12)) for h in hs]
    with one.client() as c1, two.client() as c2:
        wait_for_size(c1, 60)
        key, origin = verifier_of(c1)
        log = verify_log(c1, key, origin)
        assert verify_log(c2, key, origin).checkpoint == log.checkpoint
    assert sorted(leaf_hash(x).hex() for x in log.leaves) == sorted(accepted)
