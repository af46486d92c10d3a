"""Crashes over real HTTP: SIGKILL the hub during concurrent submissions and during sequencing.

What must hold after every restart (specs/hub-storage.md sections 5 and 6):

- every acknowledged (202) submission is in the log, once, and the case's status shows each of
  its entries integrated with an index whose inclusion proof verifies against the new checkpoint;
- the served checkpoint and every tile and entry bundle rebuild the same root (``verify_log``);
- the new checkpoint is consistent (RFC 9162) with the last one seen before the kill;
- the same request bytes sent again get byte-identical answers and store nothing twice; a request
  whose outcome the client never learned (the hub died mid-request) can be retried safely.

Both tests run on SQLite and PostgreSQL; they poll (never sleep for a fixed time) with generous
timeouts so a loaded two-core machine passes, and keep total runtime small (a hub start is ~1.5 s).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from hubkit import (
    Case,
    HubFactory,
    VerifiedLog,
    mixed_hashes,
    post,
    verifier_of,
    verify_log,
    wait_for_size,
)

from crypto.checkpoint import Checkpoint, open_checkpoint
from crypto.commitment import LeafData, LeafKind
from crypto.keys import VerifierKey
from crypto.merkle import leaf_hash, verify_consistency, verify_inclusion

# Rate limits would turn a stream from one address into 429s; the test is about crashes.
UNLIMITED = (
    "--set",
    "ip_rate=100000",
    "--set",
    "ip_burst=100000",
    "--set",
    "case_rate=100000",
    "--set",
    "case_burst=100000",
)
SLOW = 60.0  # seconds: generous bound for anything that is polled


@dataclass
class Sent:
    """One submission: its exact bytes and what the hub answered (None: connection died)."""

    case: Case
    raw: bytes
    status: int | None = None
    answer: bytes | None = None


@dataclass
class Ledger:
    """Everything the clients sent and learnt, across kills and restarts."""

    sent: list[Sent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item: Sent) -> None:
        with self.lock:
            self.sent.append(item)

    def acked(self) -> list[Sent]:
        with self.lock:
            return [s for s in self.sent if s.status == 202]

    def unknown(self) -> list[Sent]:
        with self.lock:
            return [s for s in self.sent if s.status is None]


def _stream(url: str, cases: list[Case], ledger: Ledger, stop: threading.Event, seed: int) -> None:
    """Submit 3-hash requests for random cases (shared with other threads) until stopped or the
    hub dies; a request without an answer is recorded as unknown and ends this client."""
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=SLOW) as client:
        while not stop.is_set():
            case = rng.choice(cases)
            sent = Sent(case, case.submission(mixed_hashes(3)))
            try:
                r = post(client, "/v1/submissions", sent.raw)
            except httpx.TransportError:
                ledger.add(sent)
                return
            sent.status, sent.answer = r.status_code, r.content
            ledger.add(sent)
            if r.status_code != 202:
                return  # reported by the test through the ledger


def _entries(sent: Sent) -> list[dict[str, Any]]:
    assert sent.answer is not None
    entries: list[dict[str, Any]] = httpx.Response(202, content=sent.answer).json()["entries"]
    return entries


def _poll(what: str, predicate: Any, timeout: float = SLOW) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _checkpoint(client: httpx.Client, key: VerifierKey, origin: str) -> Checkpoint:
    note = client.get("/checkpoint").content
    return open_checkpoint(note, [key], origin=origin).checkpoint


def _check_consistent(client: httpx.Client, old: Checkpoint, new: Checkpoint) -> None:
    """The hub's consistency proof links the old checkpoint to the new one."""
    assert new.size >= old.size
    r = client.get("/v1/proof/consistency", params={"first": old.size, "second": new.size})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["first"], body["second"]) == (old.size, new.size)
    proof = [bytes.fromhex(p) for p in body["proof"]]
    verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)


def _no_traceback(logs: list[str]) -> None:
    for text in logs:
        assert "Traceback" not in text, text[-3000:]


def _check_acknowledged(
    client: httpx.Client, ledger: Ledger, log: VerifiedLog, cases: list[Case]
) -> None:
    """Every acknowledged entry is in the log exactly once, status shows it integrated, and its
    inclusion proof by index verifies against the checkpoint; nothing else was stored."""
    cp = log.checkpoint
    hashes = [leaf_hash(x).hex() for x in log.leaves]
    assert len(set(hashes)) == len(hashes), "a leaf appears twice"
    position = {h: i for i, h in enumerate(hashes)}
    expected: dict[str, list[dict[str, Any]]] = {c.case_id: [] for c in cases}
    for sent in ledger.acked():
        assert sent.answer is not None
        answer = httpx.Response(202, content=sent.answer).json()
        expected[answer["case_id"]].extend(answer["entries"])
    everything = [e for entries in expected.values() for e in entries]
    assert len(everything) == cp.size, (len(everything), cp.size)
    assert {e["leaf_hash"] for e in everything} == set(hashes)

    for case in cases:
        r = post(client, "/v1/status", case.status_query())
        if not expected[case.case_id]:
            assert r.status_code == 404, r.text  # never stored, never acknowledged
            continue
        assert r.status_code == 200, r.text
        status = r.json()
        assert status["checkpoint_size"] >= cp.size
        # Exactly the acknowledged entries: nothing lost, nothing stored twice.
        assert Counter(e["entry_id"] for e in status["entries"]) == Counter(
            e["entry_id"] for e in expected[case.case_id]
        )
        listed = {e["entry_id"]: e for e in status["entries"]}
        for entry in expected[case.case_id]:
            seen = listed[entry["entry_id"]]
            assert seen["state"] == "integrated", seen
            index = seen["log_index"]
            assert index == position[entry["leaf_hash"]]
            assert seen["leaf_hash"] == entry["leaf_hash"]
            r = client.get("/v1/proof/inclusion", params={"index": index, "size": cp.size})
            assert r.status_code == 200, r.text
            proof = r.json()
            assert proof["leaf_hash"] == entry["leaf_hash"]
            verify_inclusion(
                bytes.fromhex(entry["leaf_hash"]),
                index,
                cp.size,
                [bytes.fromhex(p) for p in proof["proof"]],
                cp.root_hash,
            )


def _retry(client: httpx.Client, ledger: Ledger) -> None:
    """Acknowledged requests get byte-identical answers; unknown ones are settled by retrying
    the same bytes (the first attempt may or may not have been stored: either way one answer)."""
    for sent in ledger.acked():
        r = post(client, "/v1/submissions", sent.raw)
        assert (r.status_code, r.content) == (202, sent.answer)
    for sent in ledger.unknown():
        r = post(client, "/v1/submissions", sent.raw)
        assert r.status_code == 202, r.text
        sent.status, sent.answer = r.status_code, r.content
        again = post(client, "/v1/submissions", sent.raw)
        assert (again.status_code, again.content) == (202, sent.answer)


def test_sigkill_during_concurrent_submissions(hub_factory: HubFactory) -> None:
    hub = hub_factory(*UNLIMITED)
    cases = [Case() for _ in range(5)]  # shared by the clients: concurrent first submissions
    ledger = Ledger()
    logs: list[str] = []
    with hub.client() as client:
        key, origin = verifier_of(client)
        last = _checkpoint(client, key, origin)
    for round_ in range(1):  # more rounds add little beyond a hub start each
        stop = threading.Event()
        clients = [
            threading.Thread(target=_stream, args=(hub.url, cases, ledger, stop, 10 * round_ + i))
            for i in range(4)
        ]
        start_acked = len(ledger.acked())
        with hub.client() as client:
            for t in clients:
                t.start()
            # Kill once the stream is well under way and the sequencer has published from it.
            _poll(
                "acknowledged submissions and a new checkpoint",
                lambda: (
                    len(ledger.acked()) >= start_acked + 20  # noqa: B023 (called at once)
                    and _checkpoint(client, key, origin).size > last.size  # noqa: B023
                ),
            )
            before = _checkpoint(client, key, origin)
            hub.kill()
        stop.set()
        for t in clients:
            t.join(SLOW)
        assert not any(t.is_alive() for t in clients)
        logs.append(hub.output())
        refused = [s.status for s in ledger.sent if s.status not in (None, 202)]
        assert not refused, (refused, logs[-1][-4000:])

        hub.start()
        with hub.client() as client:
            _check_consistent(client, before, _checkpoint(client, key, origin))
            _retry(client, ledger)
            total = sum(len(_entries(s)) for s in ledger.acked())
            wait_for_size(client, total, timeout=SLOW)
            log = verify_log(client, key, origin)
            assert log.checkpoint.size == total
            _check_consistent(client, before, log.checkpoint)
            _check_consistent(client, last, log.checkpoint)
            _check_acknowledged(client, ledger, log, cases)
            _retry(client, ledger)  # still the same answers once integrated
            assert _checkpoint(client, key, origin).size == total  # nothing new was stored
            last = log.checkpoint
    logs.append(hub.output())
    _no_traceback(logs)


def test_sigkill_during_sequencing(hub_factory: HubFactory) -> None:
    """A sequencer with small rounds falls behind a burst of submissions and withdrawals (a
    large pending backlog), and is killed again and again: mid-backlog, in the first rounds
    after a restart (recovery), and after random progress. After each restart the log verifies
    and is consistent with the last checkpoint seen; finally everything is integrated once."""
    hub = hub_factory("--set", "batch_max_entries=11", *UNLIMITED)
    cases = [Case() for _ in range(6)]
    ledger = Ledger()
    per_case, partial = 80, 5
    with hub.client() as client:
        key, origin = verifier_of(client)
        last = _checkpoint(client, key, origin)
        for case in cases:
            sent = Sent(case, case.submission(mixed_hashes(per_case)))
            r = post(client, "/v1/submissions", sent.raw)
            assert r.status_code == 202, r.text
            sent.status, sent.answer = r.status_code, r.content
            ledger.add(sent)
        # Tombstones pending behind their additions: a partial and a whole-case withdrawal.
        first = _entries(ledger.sent[0])
        r = post(
            client, "/v1/withdrawals", cases[0].withdrawal([e["entry_id"] for e in first[:partial]])
        )
        assert r.status_code == 202, r.text
        r = post(client, "/v1/withdrawals", cases[1].withdrawal())
        assert r.status_code == 202, r.text
        additions = len(cases) * per_case
        total = additions + partial + per_case
        assert _checkpoint(client, key, origin).size < total  # the sequencer is behind
        hub.kill()
    logs = [hub.output()]

    rng = random.Random(2024)
    for wait in (False, True):  # killed in the first rounds after start-up, then after progress
        hub.start()
        with hub.client() as client:
            log = verify_log(client, key, origin)  # (c) after each restart
            _check_consistent(client, last, log.checkpoint)
            last = log.checkpoint
            if wait:
                target = last.size + rng.randint(1, max(1, (total - last.size) // 2))
                _poll(
                    "sequencing progress",
                    lambda: _checkpoint(client, key, origin).size >= target,  # noqa: B023
                )
            hub.kill()
        logs.append(hub.output())

    hub.start()
    with hub.client() as client:
        log = verify_log(client, key, origin)
        _check_consistent(client, last, log.checkpoint)
        wait_for_size(client, total, timeout=SLOW)
        log = verify_log(client, key, origin)
        assert log.checkpoint.size == total
        _check_consistent(client, last, log.checkpoint)
        hashes = [leaf_hash(x).hex() for x in log.leaves]
        assert len(set(hashes)) == total
        # Each acknowledged entry once. Rounds take the oldest pending entries (at most 11 here)
        # and integrate them in a random order (test_hub_shuffle.py), so each addition lies
        # within 10 places of its acceptance rank, and the tombstones come last.
        acked = [e["leaf_hash"] for s in ledger.acked() for e in _entries(s)]
        assert len(acked) == additions
        where = {h: i for i, h in enumerate(hashes)}
        assert all(abs(where[h] - rank) <= 10 for rank, h in enumerate(acked))
        kinds = [LeafData.decode(x).kind for x in log.leaves]
        assert kinds.count(LeafKind.TOMBSTONE) == total - additions
        assert LeafKind.TOMBSTONE not in kinds[: additions - 10]
        for i, case in enumerate(cases):
            status = post(client, "/v1/status", case.status_query()).json()
            assert all(e["state"] == "integrated" for e in status["entries"]), status
            expected = per_case + {0: partial, 1: per_case}.get(i, 0)
            assert len(status["entries"]) == expected
        _retry(client, ledger)  # every acknowledged answer unchanged after all the kills
    logs.append(hub.output())
    _no_traceback(logs)
