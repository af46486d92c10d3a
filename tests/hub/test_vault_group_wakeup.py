"""The key store's group commit hands each waiting request its own wake-up (hub.vault).

Why: with a condition's notify_all, every group woke every waiting thread; now a written
group wakes its own requests and the oldest waiting one, which leads the next group. These
tests pin what must not change: each request gets its own answer, a failed write fails
exactly its group, and the next leader proceeds.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hub.vault import KeyVault, VaultError

Keys = list[tuple[str, bytes]]


def _keys(n: int = 2) -> Keys:
    return [(secrets.token_hex(16), secrets.token_bytes(32)) for _ in range(n)]


def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def test_many_threads_each_get_their_own_answer(tmp_path: Path) -> None:
    """64 requests from 16 threads, every fourth one reusing a stored id: exactly those fail
    (VaultError), the others' keys are all stored, and every request is in exactly one
    written group."""
    vault = KeyVault(tmp_path / "keys.sqlite3")
    stored = _keys(1)
    vault.put_entry_keys(stored)
    requests = [stored + _keys() if i % 4 == 0 else _keys() for i in range(64)]
    groups: list[int] = []
    real_flush = vault._flush

    def counting_flush(batch: list) -> None:  # type: ignore[type-arg]
        groups.append(len(batch))
        real_flush(batch)

    vault._flush = counting_flush  # type: ignore[method-assign]

    def put(keys: Keys) -> str:
        try:
            vault.put_entry_keys(keys)
        except VaultError:
            return "refused"
        return "stored"

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(put, requests))
    assert answers == ["refused" if i % 4 == 0 else "stored" for i in range(64)]
    assert sum(groups) == 64
    good = dict(kv for i, r in enumerate(requests) if i % 4 for kv in r)
    assert vault.entry_keys(list(good)) == good
    assert len(vault.entry_key_ids()) == len(good) + 1
    assert not vault._pending and not vault._flushing
    vault.close()


def test_failed_write_fails_exactly_its_group_and_next_leader_proceeds(
    tmp_path: Path,
) -> None:
    """Group 1 = [a] (held open while b, c, d queue), group 2 = [b, c, d] fails (held open
    while e, f queue), group 3 = [e, f]: a, e and f are stored; b gets the writer's own
    error, c and d a VaultError; nothing of b, c, d is stored."""
    vault = KeyVault(tmp_path / "keys.sqlite3")
    real_flush = vault._flush
    calls: list[list[int]] = []
    gates = [threading.Event(), threading.Event(), threading.Event()]
    entered = [threading.Event(), threading.Event(), threading.Event()]
    names = "abcdef"
    requests = {name: _keys() for name in names}
    by_id = {keys[0][0]: name for name, keys in requests.items()}

    def gated_flush(batch: list) -> None:  # type: ignore[type-arg]
        n = len(calls)
        calls.append([names.index(by_id[item.rows[0][0]]) for item in batch])
        entered[n].set()
        assert gates[n].wait(10)
        if n == 1:
            raise OSError("disk gone")
        real_flush(batch)

    vault._flush = gated_flush  # type: ignore[method-assign]
    results: dict[str, str] = {}

    def put(name: str) -> None:
        try:
            vault.put_entry_keys(requests[name])
        except VaultError:
            results[name] = "VaultError"
        except OSError:
            results[name] = "OSError"
        else:
            results[name] = "stored"

    threads: list[threading.Thread] = []

    def start(name: str, queued: int) -> None:
        thread = threading.Thread(target=put, args=(name,))
        threads.append(thread)
        thread.start()
        if queued:
            _until(lambda: len(vault._pending) == queued)

    start("a", 0)
    assert entered[0].wait(10)
    for i, name in enumerate("bcd"):
        start(name, i + 1)
    gates[0].set()
    assert entered[1].wait(10)
    for i, name in enumerate("ef"):
        start(name, i + 1)
    gates[1].set()
    assert entered[2].wait(10)
    gates[2].set()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    assert calls == [[0], [1, 2, 3], [4, 5]]
    assert results == {
        "a": "stored",
        "b": "OSError",
        "c": "VaultError",
        "d": "VaultError",
        "e": "stored",
        "f": "stored",
    }
    every = [e for keys in requests.values() for e, _ in keys]
    assert vault.entry_keys(every) == dict(kv for name in "aef" for kv in requests[name])
    assert not vault._pending and not vault._flushing
    vault._flush = real_flush  # type: ignore[method-assign]
    vault.put_entry_keys(_keys())  # the writer goes on
    vault.close()


@pytest.mark.parametrize("n", [1, 3])
def test_lone_request_leads_and_releases(tmp_path: Path, n: int) -> None:
    """Requests one after another each lead their own group and leave no leader behind."""
    vault = KeyVault(tmp_path / "keys.sqlite3")
    for _ in range(n):
        keys = _keys()
        vault.put_entry_keys(keys)
        assert vault.entry_keys([e for e, _ in keys]) == dict(keys)
        assert not vault._pending and not vault._flushing
    vault.close()
