"""Two hub processes on one database and one data directory: one tree, no duplicates, no gaps."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hubkit import Case, HubFactory, mixed_hashes, post, verifier_of, verify_log, wait_for_size

from crypto.merkle import leaf_hash


def _listeners(port: int) -> int:
    """Sockets listening on this TCP port on this host (/proc/net/tcp, state 0A)."""
    table = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(
        1 for row in table if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A"
    )


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


def test_processes_sharing_one_port(hub_factory: HubFactory) -> None:
    """``serve --reuse-port``: a second process binds the same port (the kernel spreads
    connections over both); every submission through the port lands in the one log, and when
    the sequencing process dies the other takes the lock and the port goes on answering."""
    one = hub_factory("--reuse-port")
    two = hub_factory("--reuse-port", data_dir=one.data_dir, start=False)
    two.port = one.port
    two.start()  # ready as soon as the port answers, which `one` already does; so:
    deadline = time.monotonic() + 60
    while _listeners(one.port) < 2:
        assert time.monotonic() < deadline, "the second process never listened"
        time.sleep(0.1)
    cases = [Case() for _ in range(16)]

    def submit(i: int) -> list[str]:
        with one.client() as client:  # new connections: spread over both processes
            r = post(client, "/v1/submissions", cases[i].submission(mixed_hashes(3)))
            assert r.status_code == 202, r.text
            return [e["leaf_hash"] for e in r.json()["entries"]]

    with ThreadPoolExecutor(4) as pool:
        accepted = [h for hs in pool.map(submit, range(8)) for h in hs]
    one.kill()  # SIGKILL: the survivor answers on the same port and takes the sequencer lock
    accepted += [h for i in range(8, 16) for h in submit(i)]
    with two.client() as client:
        wait_for_size(client, 48, timeout=60)
        key, origin = verifier_of(client)
        log = verify_log(client, key, origin)
    assert sorted(leaf_hash(x).hex() for x in log.leaves) == sorted(accepted)
