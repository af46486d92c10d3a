"""Bounded load test on 127.0.0.1: signed submissions and log reads (checkpoint, /v1/log, tiles,
inclusion proofs) together for a fixed time, then proof that every acknowledged entry is in the
log. One asyncio client (httpx), SQLite and PostgreSQL.

    .venv/bin/python -m pytest tests/system/test_load.py -s              # ~5 s per database
    NCII_LOAD_SECONDS=120 .venv/bin/python -m pytest tests/system/test_load.py -s   # long mode

Rate limits: the address limit is lifted (one client address here); one "hot" case submits in a
loop past its case limit (case_rate=1, case_burst=5), so its 429s are intended and counted
apart. Any other non-2xx answer or transport error fails the test. Figures print with -s.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import httpx
from hubkit import (
    ENVELOPE_TYPE,
    Case,
    HubFactory,
    mixed_hashes,
    verifier_of,
    verify_log,
    wait_for_size,
)

from crypto.merkle import leaf_hash, verify_inclusion
from crypto.tiles import tiles_for_size

# 5 s: several hundred accepted submissions, the hot case's 429s within its first second and
# tiles and proofs read throughout; each accepted case costs a status query afterwards, so
# the check after the load grows with it (8 s took 15-17 s per database, 5 s about 10).
SECONDS = float(os.environ.get("NCII_LOAD_SECONDS", "5"))
SUBMITTERS = 6
READERS = 4
LIMITS = (
    "--set", "ip_rate=100000", "--set", "ip_burst=100000",
    "--set", "case_rate=1", "--set", "case_burst=5",
    "--set", "batch_interval=0.5",
)  # fmt: skip


@dataclass
class Tally:
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    status: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    intended_429: int = 0
    accepted: list[tuple[Case, list[str]]] = field(default_factory=list)

    def record(self, kind: str, began: float, response: httpx.Response) -> None:
        self.latency[kind].append(time.perf_counter() - began)
        self.status[f"{kind} {response.status_code}"] += 1


async def _submitter(client: httpx.AsyncClient, tally: Tally, stop: float, hot: bool) -> None:
    hot_case = Case()
    while time.monotonic() < stop:
        case = hot_case if hot else Case()
        raw = case.submission(mixed_hashes(2))
        began = time.perf_counter()
        try:
            r = await client.post(
                "/v1/submissions", content=raw, headers={"Content-Type": ENVELOPE_TYPE}
            )
        except httpx.HTTPError as exc:
            tally.errors.append(f"submit {type(exc).__name__}")
            continue
        tally.record("submit", began, r)
        if r.status_code == 202:
            tally.accepted.append((case, [e["entry_id"] for e in r.json()["entries"]]))
        elif hot and r.status_code == 429:
            tally.intended_429 += 1
            await asyncio.sleep(0.05)
        else:
            tally.errors.append(f"submit {r.status_code} {r.text[:120]}")


async def _reader(client: httpx.AsyncClient, tally: Tally, stop: float, seed: int) -> None:
    rng = random.Random(seed)
    size = 0
    while time.monotonic() < stop:
        kind = rng.choice(["checkpoint", "log", "tile", "proof"])
        if kind in ("tile", "proof") and size == 0:
            kind = "log"
        if kind == "checkpoint":
            path = "/checkpoint"
        elif kind == "log":
            path = "/v1/log"
        elif kind == "tile":
            path = "/" + rng.choice(list(tiles_for_size(size))).path
        else:
            path = f"/v1/proof/inclusion?index={rng.randrange(size)}&size={size}"
        began = time.perf_counter()
        try:
            r = await client.get(path)
        except httpx.HTTPError as exc:
            tally.errors.append(f"{kind} {type(exc).__name__}")
            continue
        tally.record(kind, began, r)
        if r.status_code != 200:
            tally.errors.append(f"{kind} {r.status_code} {r.text[:120]}")
        elif kind == "log":
            size = int(r.json()["size"])


async def _run(url: str) -> tuple[Tally, float]:
    tally = Tally()
    limits = httpx.Limits(max_connections=SUBMITTERS + READERS + 2)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as client:
        began = time.monotonic()
        stop = began + SECONDS
        await asyncio.gather(
            *(_submitter(client, tally, stop, hot=i == 0) for i in range(SUBMITTERS)),
            *(_reader(client, tally, stop, seed=i) for i in range(READERS)),
        )
        return tally, time.monotonic() - began


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _statuses(
    url: str, accepted: list[tuple[Case, list[str]]]
) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    sem = asyncio.Semaphore(16)
    # A connection idle through a 429's wait (up to 5 s) would meet uvicorn's 5 s keep-alive
    # close as it is reused (a ReadError): idle connections are dropped on this side first.
    limits = httpx.Limits(keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as client:

        async def one(case: Case) -> None:
            # The hot case may still be over its per-case limit: wait as the hub says, as a
            # client does (a fresh query each time: status queries are single-use).
            for _ in range(30):
                async with sem:
                    r = await client.post(
                        "/v1/status",
                        content=case.status_query(),
                        headers={"Content-Type": ENVELOPE_TYPE},
                    )
                if r.status_code != 429:
                    break
                await asyncio.sleep(min(float(r.headers.get("retry-after", "1")), 5.0))
            assert r.status_code == 200, r.text
            for e in r.json()["entries"]:
                out[e["entry_id"]] = e

        await asyncio.gather(*(one(c) for c in {id(c): c for c, _ in accepted}.values()))
    return out


def test_load_submissions_and_reads(hub_factory: HubFactory, database_url: str) -> None:
    hub = hub_factory(*LIMITS)
    tally, elapsed = asyncio.run(_run(hub.url))

    db = database_url.split(":", 1)[0].split("+")[0]
    print(f"\nload on {db}: {elapsed:.1f} s, {SUBMITTERS} submitters + {READERS} readers")
    print(f"  {'kind':<11}{'requests':>9}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for kind, values in sorted(tally.latency.items()):
        print(
            f"  {kind:<11}{len(values):>9}{len(values) / elapsed:>9.1f}"
            f"{_pct(values, 0.5):>9.1f}{_pct(values, 0.99):>9.1f}"
        )
    entries = sum(len(ids) for _, ids in tally.accepted)
    print(f"  accepted {len(tally.accepted)} submissions ({entries} entries); "
          f"intended 429s {tally.intended_429}; errors {len(tally.errors)}")  # fmt: skip
    assert not tally.errors, tally.errors[:5]
    assert tally.intended_429 > 0  # the case limit was exercised
    assert len(tally.accepted) > 0 and all(tally.latency[k] for k in ("tile", "proof", "log"))

    # every acknowledged entry is in the log
    with hub.client() as client:
        key, origin = verifier_of(client)
        wait_for_size(client, entries, timeout=120)
        statuses = asyncio.run(_statuses(hub.url, tally.accepted))
        log = verify_log(client, key, origin)
        leaf_hashes = [leaf_hash(x) for x in log.leaves]
        size = log.checkpoint.size
        ids = [eid for _, group in tally.accepted for eid in group]
        assert len(set(ids)) == len(ids)
        for eid in ids:
            s = statuses[eid]
            assert s["log_index"] is not None, eid
            assert leaf_hashes[int(s["log_index"])].hex() == s["leaf_hash"]  # type: ignore[call-overload]
        for eid in random.Random(1).sample(ids, min(100, len(ids))):
            index = int(statuses[eid]["log_index"])  # type: ignore[call-overload]
            r = client.get("/v1/proof/inclusion", params={"index": index, "size": size})
            assert r.status_code == 200
            proof = [bytes.fromhex(h) for h in r.json()["proof"]]
            verify_inclusion(leaf_hashes[index], index, size, proof, log.checkpoint.root_hash)
