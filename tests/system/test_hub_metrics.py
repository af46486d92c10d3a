"""The hub's /healthz, /readyz and /metrics over real HTTP from a real ``ncii-hub serve``, on
SQLite and PostgreSQL (issue 18, "Health and metrics").

A walkthrough-like run (two cases submit, one is refused, one is rate-limited, one withdraws an
entry, a partner syncs and acknowledges) is followed by a scrape parsed with
prometheus-client's own text parser; the values must equal what was done, the lags must be 0
once everything is sealed, and no label may carry a hash value, case id, entry id or address.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import httpx
from hubkit import Case, HubFactory, mixed_hashes, post, random_md5, random_pdq, wait_for_size
from prometheus_client.parser import text_string_to_metric_families
from syskit import FEED_FAST

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "partner"))

from feedkit import FeedKit

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: httpx.Client) -> tuple[Samples, str]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, response.text


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def wait_metric(client: httpx.Client, name: str, want: float, timeout: float = 20.0) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        samples, _ = scrape(client)
        if samples.get((name, ())) == want:
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} is {samples.get((name, ()))}, not {want}")
        time.sleep(0.05)


def readyz_until(client: httpx.Client, status: int, timeout: float = 10.0) -> httpx.Response:
    """/readyz once it answers ``status``: a finished check is shared for about a second
    (hub/health.py SharedReadiness), so a change shows on the next check, not at once."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get("/readyz")
        if answer.status_code == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def test_metrics_after_a_walkthrough(hub_factory: HubFactory, tmp_path: Path) -> None:
    hub = hub_factory(*FEED_FAST, "--set", "case_burst=3", "--set", "case_rate=0.01")
    kit = FeedKit(hub, tmp_path)
    try:
        directory = kit.new_partner("metricspartner")
        first, second = Case(), Case()
        hashes_a = mixed_hashes(8)  # 2 each of pdq, md5, sha256, vpdq
        hashes_b = [random_pdq(), random_md5()]
        with hub.client() as client:
            assert client.get("/healthz").json() == {"v": 1, "status": "alive"}
            raw = first.submission(hashes_a)
            ok = post(client, "/v1/submissions", raw)
            assert ok.status_code == 202
            entry_ids = [e["entry_id"] for e in ok.json()["entries"]]
            assert post(client, "/v1/submissions", second.submission(hashes_b)).status_code == 202
            # The identical retry gets the stored answer and is not counted twice.
            assert post(client, "/v1/submissions", raw).content == ok.content
            assert post(client, "/v1/submissions", b"not an envelope").status_code == 400
            wait_for_size(client, 10)
            # second: 1 submission + 2 status queries fill its burst of 3; the third is refused
            assert post(client, "/v1/status", second.status_query()).status_code == 200
            assert post(client, "/v1/status", second.status_query()).status_code == 200
            limited = post(client, "/v1/status", second.status_query())
            assert limited.status_code == 429
            assert post(
                client, "/v1/withdrawals", first.withdrawal([entry_ids[0]])
            ).status_code in (
                200,
                202,
            )
            wait_for_size(client, 11)
            kit.wait_sealed(11)
            summary = kit.partner(directory).sync()
            assert summary.cursor == 11

            samples = wait_metric(client, "ncii_hub_sealing_lag_entries", 0)
            _, text = scrape(client)
            assert client.get("/readyz").json() == {"v": 1, "ready": True, "problems": {}}

        assert value(samples, "ncii_hub_submissions_accepted_total") == 2
        for algorithm, count in (("pdq", 3), ("md5", 3), ("sha256", 2), ("vpdq", 2)):
            assert value(samples, "ncii_hub_hashes_accepted_total", algorithm=algorithm) == count
        assert value(samples, "ncii_hub_refusals_total", code="malformed_envelope") == 1
        assert value(samples, "ncii_hub_refusals_total", code="rate_limited") == 1
        assert value(samples, "ncii_hub_rate_limited_total", route="/v1/status") == 1
        assert value(samples, "ncii_hub_held_total") == 0
        assert value(samples, "ncii_hub_log_size") == 11
        assert value(samples, "ncii_hub_log_published_size") == 11
        assert value(samples, "ncii_hub_pending_entries") == 0
        assert value(samples, "ncii_hub_sequencing_lag_seconds") == 0
        assert value(samples, "ncii_hub_feed_sealed_size") == 11
        assert value(samples, "ncii_hub_sealing_lag_seconds") == 0
        assert value(samples, "ncii_hub_partner_acked", partner="metricspartner") == 11
        assert value(samples, "ncii_hub_partner_lag_entries", partner="metricspartner") == 0
        assert value(samples, "ncii_hub_sequencer_running") == 1
        assert value(samples, "ncii_hub_sequencer_lock_held") == 1
        assert value(samples, "ncii_hub_database_up") == 1
        assert (
            value(samples, "ncii_hub_http_request_duration_seconds_count", route="/v1/submissions")
            == 4
        )
        assert (
            value(samples, "ncii_hub_http_requests_total", route="/v1/submissions", status="202")
            >= 2
        )
        assert value(samples, "ncii_hub_http_requests_total", route="/v1/status", status="429") == 1
        # Route templates only: the partner's batch fetches are one series, not one per batch.
        routes = {dict(labels).get("route") for (_n, labels) in samples} - {None}
        assert all(r == "other" or r.startswith("/") for r in routes if r is not None)
        assert "/feed/{name}" in routes and "/tile/{path:path}" in routes, routes
        assert not [r for r in routes if any(c.isdigit() for c in r.replace("/v1/", "/"))]

        secrets_used = [first.case_id, second.case_id, *entry_ids, "127.0.0.1"]
        for item in [*hashes_a, *hashes_b]:
            secrets_used += (
                [item["hash"]] if "hash" in item else [f["hash"] for f in item["frames"]]
            )
        for secret in secrets_used:
            assert secret not in text
    finally:
        kit.close()


def test_metrics_are_for_loopback_and_readyz_names_what_is_wrong(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory()
    with hub.client() as client:
        relayed = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert relayed.status_code == 403
        assert relayed.json()["error"]["code"] == "metrics_restricted"
        assert client.get("/metrics", headers={"Forwarded": "for=203.0.113.9"}).status_code == 403
        assert client.get("/readyz").status_code == 200

        # The tiles folder cannot take a file: not ready, and the reason names only that.
        tiles = hub.data_dir / "tiles"
        moved = hub.data_dir / "tiles.moved"
        tiles.rename(moved)
        tiles.write_bytes(b"")
        try:
            answer = readyz_until(client, 503)
            assert answer.status_code == 503
            body = answer.json()
            assert body["ready"] is False and set(body["problems"]) == {"tiles"}
            assert str(hub.data_dir) not in answer.text
            assert client.get("/healthz").status_code == 200  # alive all the same
        finally:
            tiles.unlink()
            moved.rename(tiles)
        assert readyz_until(client, 200).status_code == 200
        samples, _ = scrape(client)
        assert value(samples, "ncii_hub_refusals_total", code="metrics_restricted") == 2


def test_metrics_can_be_made_public(sqlite_hub_factory: HubFactory) -> None:
    hub = sqlite_hub_factory("--set", "metrics_public=true")
    with hub.client() as client:
        relayed = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert relayed.status_code == 200
        assert "ncii_hub_log_size" in relayed.text


def test_key_store_problem_is_reported(sqlite_hub_factory: HubFactory) -> None:
    hub = sqlite_hub_factory()
    store = hub.data_dir / "keys.sqlite3"
    kept = hub.data_dir / "keys.kept"
    with hub.client() as client:
        shutil.copy2(store, kept)
        store.unlink()
        try:
            answer = readyz_until(client, 503)
            assert answer.status_code == 503
            assert set(answer.json()["problems"]) == {"key_store"}
            assert not store.exists()  # the probe never creates the key store
        finally:
            shutil.copy2(kept, store)
