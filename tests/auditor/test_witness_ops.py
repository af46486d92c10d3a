"""The witness's operator endpoints over real HTTP against a real ``ncii-audit witness serve``:
/healthz, /readyz (503 when its state store is gone), /metrics parsed with prometheus-client's
own text parser after real traffic, and ``--log-format json`` lines."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
from auditkit import MemLog, WitnessProcess
from prometheus_client.parser import text_string_to_metric_families

from crypto.witness_protocol import encode_add_checkpoint


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by (name, sorted labels)."""
    answer = httpx.get(url + "/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    out = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_witness_health_ready_metrics_and_json_logs(tmp_path: Path) -> None:
    log = MemLog()
    other = MemLog("other.example.org/log", b"\x09" * 32)
    state = tmp_path / "state.sqlite3"
    proc = WitnessProcess(
        tmp_path / "w",
        "w1",
        [f"{log.origin}={log.vkey}", f"{other.origin}={other.vkey}"],
        state=state,
        extra=("--log-format", "json"),
    ).start()
    try:
        url = proc.url
        assert httpx.get(url + "/healthz").status_code == 200
        ready = httpx.get(url + "/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True

        # Traffic: 3 cosigned, 1 conflict (409), 1 malformed (400), 1 unknown origin (404).
        post = httpx.Client(base_url=url, timeout=10)
        log.grow(3)
        assert post.post(
            "/add-checkpoint", content=encode_add_checkpoint(0, [], log.note())
        ).is_success
        log.grow(4)
        body = encode_add_checkpoint(3, log.proof(3), log.note())
        assert post.post("/add-checkpoint", content=body).status_code == 200
        assert post.post("/add-checkpoint", content=body).status_code == 409  # old size 3 != 7
        assert post.post("/add-checkpoint", content=b"old x\n").status_code == 400
        stranger = MemLog("stranger.example.org/log", b"\x0b" * 32)
        stranger.grow(1)
        assert (
            post.post(
                "/add-checkpoint", content=encode_add_checkpoint(0, [], stranger.note())
            ).status_code
            == 404
        )
        other.grow(2)
        assert post.post(
            "/add-checkpoint", content=encode_add_checkpoint(0, [], other.note())
        ).is_success
        assert post.get(f"/checkpoint/{log.origin}").status_code == 200

        m = scrape(url)
        route = "/add-checkpoint"
        assert m[("ncii_witness_add_checkpoint_requests_total", (("result", "cosigned"),))] == 3
        assert m[("ncii_witness_add_checkpoint_requests_total", (("result", "409"),))] == 1
        assert m[("ncii_witness_add_checkpoint_requests_total", (("result", "400"),))] == 1
        assert m[("ncii_witness_add_checkpoint_requests_total", (("result", "404"),))] == 1
        assert m[("ncii_witness_cosignatures_total", ())] == 3
        assert m[("ncii_witness_http_requests_total", (("route", route), ("status", "200")))] == 3
        assert m[("ncii_witness_http_request_duration_seconds_count", (("route", route),))] == 6
        assert m[("ncii_witness_http_request_duration_seconds_sum", (("route", route),))] > 0
        key = (
            "ncii_witness_http_requests_total",
            (("route", "/checkpoint/{origin}"), ("status", "200")),
        )
        assert m[key] == 1  # the route template, never the origin asked for
        assert m[("ncii_witness_log_cosigned_size", (("origin", log.origin),))] == 7
        assert m[("ncii_witness_log_cosigned_size", (("origin", other.origin),))] == 2
        assert m[("ncii_witness_log_cosigned_timestamp_seconds", (("origin", log.origin),))] > (
            time.time() - 600
        )
        assert m[("ncii_witness_logs", ())] == 2
        labels = {value for (_, pairs) in m for _, value in pairs}
        assert stranger.origin not in labels  # an unknown origin never becomes a label

        # The state store goes away underneath the running witness: not ready, then ready again.
        moved = state.with_name("moved.sqlite3")
        state.rename(moved)
        try:
            gone = httpx.get(url + "/readyz")
            assert gone.status_code == 503
            assert set(gone.json()["problems"]) == {"state"}
            assert httpx.get(url + "/healthz").status_code == 200  # alive all the same
        finally:
            moved.rename(state)
        assert httpx.get(url + "/readyz").status_code == 200

        # Bad HTTP: uvicorn's own warning must come out as JSON too.
        with socket.create_connection(("127.0.0.1", proc.port), timeout=5) as raw:
            raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            raw.recv(1000)
    finally:
        proc.kill()

    lines = [line for line in proc.log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records, lines
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
    assert any(r["logger"] == "auditor.witness" and "not ready" in r["message"] for r in records)
    assert any(r["logger"] == "auditor.witness" and r.get("logs") == 2 for r in records)
    assert any(r["logger"].startswith("uvicorn") for r in records), records
    non_json = [line for line in lines if not line.startswith("{")]
    assert all(line.startswith("verifier key: ") for line in non_json), non_json
    text = proc.log_path.read_text()
    for size in (3, 7):
        assert log.root(size).hex() not in text
        assert log.note(size).decode().split("\n")[2] not in text  # no root hash, base64
