"""The database drops every connection while submissions stream (PostgreSQL: the hub's backends
are terminated with pg_terminate_backend, as a server restart would). The hub must answer only
202 or a clean JSON 503 (never a 500, never a hang), recover without a restart, and every 202
it gave must be in the log afterwards. SQLite is embedded (no server to lose), so this test is
PostgreSQL only."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
from hubkit import Case, HubProcess, mixed_hashes, post, verifier_of, verify_log, wait_for_size
from syskit import FAST, NO_LIMITS, wait_until

from crypto.merkle import leaf_hash

# About a dozen rounds of terminations (each kills every backend of the hub: 5-6 at a time)
# under four streaming submitters; every 202 of the stream costs a status query afterwards.
STREAM_SECONDS = 4.0


def _terminate_backends(admin_url: str, database: str) -> int:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def test_database_connections_killed_under_load(
    postgres_url: str, postgres_admin_url: str, tmp_path: Path
) -> None:
    hub = HubProcess(tmp_path / "data", postgres_url, (*FAST, *NO_LIMITS)).start()
    database = postgres_url.rsplit("/", 1)[1]
    accepted: list[tuple[Case, str]] = []  # (case, entry id) of every 202
    statuses: Counter[int] = Counter()
    bad: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(base_url=hub.url, timeout=30.0) as client:
            while not stop.is_set():
                case = Case()
                raw = case.submission(mixed_hashes(1))
                try:
                    r = post(client, "/v1/submissions", raw)
                except httpx.TimeoutException:
                    with lock:
                        bad.append("timeout")
                    continue
                with lock:
                    statuses[r.status_code] += 1
                    if r.status_code == 202:
                        accepted.append((case, r.json()["entries"][0]["entry_id"]))
                    elif r.status_code != 503 or r.json()["error"]["code"] == "internal_error":
                        bad.append(f"{r.status_code} {r.text[:200]}")

    try:
        workers = [threading.Thread(target=stream) for _ in range(4)]
        for w in workers:
            w.start()
        kills = 0
        deadline = time.monotonic() + STREAM_SECONDS
        while time.monotonic() < deadline:
            kills += _terminate_backends(postgres_admin_url, database)
            # reads during the outage answer cleanly too
            r = httpx.get(hub.url + "/v1/log", timeout=30.0)
            assert r.status_code in (200, 503), r.text
            if r.status_code == 503:
                assert r.json()["error"]["code"] != "internal_error"
            time.sleep(0.3)
        stop.set()
        for w in workers:
            w.join(60)
        assert kills > 0
        assert not bad, bad[:5]
        assert statuses[202] > 0, statuses

        # recovered without a restart: new submissions are accepted and sequenced
        with hub.client() as client:
            probe = Case()

            def accepted_again() -> bool:
                r = post(client, "/v1/submissions", probe.submission(mixed_hashes(1)))
                if r.status_code == 202:
                    accepted.append((probe, r.json()["entries"][0]["entry_id"]))
                return r.status_code == 202

            wait_until(accepted_again, timeout=30, what="hub accepts again")
            key, origin = verifier_of(client)
            wait_for_size(client, len(accepted), timeout=60)
            wait_until(
                lambda: all(_indexed(client, case, eid) for case, eid in accepted[-5:]),
                timeout=60,
                what="last entries sequenced",
            )
            log = verify_log(client, key, origin)
            hashes = {leaf_hash(x) for x in log.leaves}
            # every 202 is in the log (hundreds of status queries: four at a time)
            with ThreadPoolExecutor(4) as pool:
                infos = list(pool.map(lambda a: _status_entry(client, *a), accepted))
            for (_, entry_id), info in zip(accepted, infos, strict=True):
                assert info["log_index"] is not None, entry_id
                assert bytes.fromhex(str(info["leaf_hash"])) in hashes
        assert hub.proc is not None and hub.proc.poll() is None  # never restarted
        # no request died unhandled (the sequencer may log its failed rounds and retry)
        assert "Exception in ASGI application" not in hub.output()
        print(f"statuses {dict(statuses)}, backends terminated {kills}")
    finally:
        stop.set()
        hub.kill()


def _status_entry(client: httpx.Client, case: Case, entry_id: str) -> dict[str, object]:
    r = post(client, "/v1/status", case.status_query())
    assert r.status_code == 200, r.text
    (entry,) = [e for e in r.json()["entries"] if e["entry_id"] == entry_id]
    return dict(entry)


def _indexed(client: httpx.Client, case: Case, entry_id: str) -> bool:
    return _status_entry(client, case, entry_id)["log_index"] is not None
