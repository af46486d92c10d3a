"""The match service's operator endpoints over real HTTP against a real ``ncii-partner serve``:
/healthz, /readyz (503 when the store is gone), /metrics parsed with prometheus-client's own
text parser after real traffic (counts equal the requests made), the guard rules on them, and
``--log-format json`` lines that carry no hash value."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import httpx
from matchkit import JSON_HEADERS, MatchService, StoreWriter, pdq
from prometheus_client.parser import text_string_to_metric_families

from partner_sdk.batch import Addition

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: httpx.Client, **kw: object) -> Samples:
    answer = client.get("/metrics", **kw)  # type: ignore[arg-type]
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    out: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def req(m: Samples, endpoint: str, outcome: str) -> float:
    return m.get(("ncii_match_requests_total", (("endpoint", endpoint), ("outcome", outcome))), 0.0)


def test_health_ready_metrics_and_json_logs(tmp_path: Path) -> None:
    store = tmp_path / "partner"
    writer = StoreWriter(store)
    stored = [secrets.token_bytes(32) for _ in range(3)]
    md5 = secrets.token_bytes(16)
    writer.append([pdq(d) for d in stored] + [Addition("md5", md5, None)])
    writer.close()
    service = MatchService(store, extra_args=("--log-format", "json")).start()
    try:
        c = httpx.Client(base_url=service.url, timeout=30)
        assert c.get("/healthz").json() == {"v": 1, "status": "alive"}
        ready = c.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["ready"] is True and ready.json()["checkpoint_size"] == 4
        assert ready.json()["index_cursor"] == 4 and ready.json()["index_behind"] == 0

        # Traffic: 2 hash lookups that match, 1 that does not, 1 batch (2 matches, 1 miss),
        # 1 bad hash, 1 missing custom header, 1 wrong Host.
        absent = secrets.token_bytes(32)
        for digest in (stored[0], stored[1], absent):
            r = c.post(
                "/v1/match/hash",
                json={"algorithm": "pdq", "hash": digest.hex()},
                headers=JSON_HEADERS,
            )
            assert r.status_code == 200
        batch = {
            "hashes": [
                {"algorithm": "pdq", "hash": stored[2].hex()},
                {"algorithm": "md5", "hash": md5.hex()},
                {"algorithm": "pdq", "hash": absent.hex()},
            ]
        }
        assert c.post("/v1/match/hashes", json=batch, headers=JSON_HEADERS).status_code == 200
        bad = c.post(
            "/v1/match/hash", json={"algorithm": "pdq", "hash": "zz"}, headers=JSON_HEADERS
        )
        assert bad.status_code == 400
        no_header = c.post("/v1/match/hash", json={"algorithm": "pdq", "hash": absent.hex()})
        assert no_header.status_code == 403
        wrong_host = c.get("/metrics", headers={"Host": "evil.example"})
        assert wrong_host.status_code == 421  # the Host allow-list covers /metrics too
        assert c.get("/healthz", headers={"Host": "evil.example"}).status_code == 421

        m = scrape(c)
        assert req(m, "/v1/match/hash", "match") == 2
        assert req(m, "/v1/match/hash", "no_match") == 1
        assert req(m, "/v1/match/hash", "refused") == 2
        assert req(m, "/v1/match/hashes", "match") == 1
        assert req(m, "/metrics", "refused") == 1
        assert req(m, "/healthz", "refused") == 1
        assert req(m, "/healthz", "ok") == 1 and req(m, "/readyz", "ok") == 1
        assert m[("ncii_match_matches_total", (("algorithm", "pdq"),))] == 3
        assert m[("ncii_match_matches_total", (("algorithm", "md5"),))] == 1
        refusal = "ncii_match_refusals_total"
        assert m[(refusal, (("reason", "bad_hash"),))] == 1
        assert m[(refusal, (("reason", "missing_match_header"),))] == 1
        assert m[(refusal, (("reason", "misdirected_host"),))] == 2
        hist = "ncii_match_request_duration_seconds"
        assert m[(f"{hist}_count", (("endpoint", "/v1/match/hash"),))] == 5
        assert m[(f"{hist}_count", (("endpoint", "/v1/match/hashes"),))] == 1
        assert m[(f"{hist}_sum", (("endpoint", "/v1/match/hash"),))] > 0
        assert m[("ncii_match_stored_hashes", (("algorithm", "pdq"),))] == 3
        assert m[("ncii_match_stored_hashes", (("algorithm", "md5"),))] == 1
        assert m[("ncii_match_stored_hashes", (("algorithm", "vpdq"),))] == 0
        assert m[("ncii_match_index_cursor", ())] == 4
        assert m[("ncii_match_sync_checkpoint_size", ())] == 4
        assert m[("ncii_match_sync_timestamp_seconds", ())] == 0  # StoreWriter syncs "at 0"
        labels = {value for (_, pairs) in m for _, value in pairs}
        assert labels <= {
            "/v1/match/hash",
            "/v1/match/hashes",
            "/health",
            "/healthz",
            "/readyz",
            "/metrics",
            "match",
            "no_match",
            "refused",
            "ok",
            "pdq",
            "md5",
            "sha256",
            "vpdq",
            "bad_hash",
            "missing_match_header",
            "misdirected_host",
            # defences (specs/partner-defences.md): suppression reasons and mark states
            "false_positive",
            "quarantine",
            "allow_list",
            "confirmed",
            "quarantined",
            "released",
        } | {b for (name, pairs) in m for k, b in pairs if k == "le"}

        # The store goes away underneath the running service: not ready, alive, then ready.
        path = store / "store.sqlite3"
        moved = store / "moved.sqlite3"
        path.rename(moved)
        try:
            gone = c.get("/readyz")
            assert gone.status_code == 503 and set(gone.json()["problems"]) == {"store"}
            assert c.get("/healthz").status_code == 200
        finally:
            moved.rename(path)
        assert c.get("/readyz").status_code == 200
    finally:
        service.stop()

    text = service.output()
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert records
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
    assert any("matching on" in r["message"] for r in records)
    assert any("not ready" in r["message"] for r in records)
    for digest in [*stored, absent, md5]:
        assert digest.hex() not in text


def test_token_guards_metrics_not_healthz(tmp_path: Path) -> None:
    """/metrics needs the operator token (the match token gets 403); /healthz and /readyz
    need no token and then tell only alive/ready."""
    store = tmp_path / "partner"
    writer = StoreWriter(store)
    writer.append([pdq(secrets.token_bytes(32))])
    writer.close()
    token, ops = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    token_file, ops_file = tmp_path / "match.token", tmp_path / "ops.token"
    for path, value in ((token_file, token), (ops_file, ops)):
        path.write_text(value + "\n")
        os.chmod(path, 0o600)
    auth = {"Authorization": f"Bearer {token}"}
    operator = {"Authorization": f"Bearer {ops}"}
    args = ("--token-file", str(token_file), "--operator-token-file", str(ops_file))
    service = MatchService(store, extra_args=args)
    service.start(headers=auth)
    try:
        c = httpx.Client(base_url=service.url, timeout=30)
        assert c.get("/healthz").status_code == 200  # a liveness probe needs no secret
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=auth).status_code == 403  # the match token: no
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"v": 1, "ready": True, "problems": []}
        m = scrape(c, headers=operator)
        assert req(m, "/metrics", "refused") == 2
        assert m[("ncii_match_refusals_total", (("reason", "unauthorized"),))] == 1
        assert m[("ncii_match_refusals_total", (("reason", "operator_only"),))] == 1
        assert c.get("/readyz", headers=operator).json()["index_cursor"] == 1
    finally:
        service.stop()
    assert token not in service.output() and ops not in service.output()
