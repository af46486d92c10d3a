"""hub.metrics in one process: each app has its own registry (two hubs, two sets of counts),
labels stay bounded and free of request content, and /metrics is refused to a client that is
not loopback unless ``metrics_public`` is set."""

from __future__ import annotations

import warnings
from pathlib import Path

from fastapi.testclient import TestClient
from hubkit import Case, random_pdq
from prometheus_client.parser import text_string_to_metric_families

from hub.app import create_app
from hub.metrics import HubMetrics, metrics_allowed
from hub.settings import Settings

ENVELOPE = {"Content-Type": "application/vnd.ncii.envelope"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def client_for(tmp_path: Path, name: str) -> TestClient:
    settings = Settings(
        data_dir=tmp_path / name, sequencer=False, metrics_public=True, puzzle=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TestClient(create_app(settings))


def test_two_hubs_in_one_process_count_separately(tmp_path: Path) -> None:
    one, two = client_for(tmp_path, "one"), client_for(tmp_path, "two")
    sent = one.post("/v1/submissions", content=Case().submission([random_pdq()]), headers=ENVELOPE)
    assert sent.status_code == 202
    first = samples(one.get("/metrics").text)
    second = samples(two.get("/metrics").text)
    assert first[("ncii_hub_hashes_accepted_total", (("algorithm", "pdq"),))] == 1
    assert second[("ncii_hub_hashes_accepted_total", (("algorithm", "pdq"),))] == 0
    assert first[("ncii_hub_log_size", ())] == 0  # no sequencer in these apps
    assert first[("ncii_hub_pending_entries", ())] == 1
    assert second[("ncii_hub_pending_entries", ())] == 0
    assert first[("ncii_hub_sequencer_running", ())] == 0


def test_metrics_refused_to_a_client_that_is_not_loopback(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", sequencer=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = TestClient(create_app(settings))  # its peer is "testclient", not loopback
    answer = client.get("/metrics")
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "metrics_restricted"
    assert client.get("/healthz").json() == {"v": 1, "status": "alive"}


def test_access_rule() -> None:
    def scope(host: str | None, *headers: tuple[bytes, bytes]) -> dict[str, object]:
        return {"client": None if host is None else (host, 5000), "headers": list(headers)}

    assert metrics_allowed(scope("127.0.0.1"), public=False)
    assert metrics_allowed(scope("::1"), public=False)
    assert not metrics_allowed(scope("203.0.113.9"), public=False)
    assert not metrics_allowed(scope("testclient"), public=False)
    assert not metrics_allowed(scope(None), public=False)
    assert not metrics_allowed(scope("127.0.0.1", (b"x-forwarded-for", b"1.2.3.4")), False)
    assert not metrics_allowed(scope("127.0.0.1", (b"X-Real-IP", b"1.2.3.4")), False)
    assert metrics_allowed(scope("203.0.113.9"), public=True)


def test_labels_are_bounded_and_held_counts() -> None:
    metrics = HubMetrics()
    metrics.held(3)
    metrics.held(0)
    for i in range(150):
        metrics.observe("/v1/status", 400, 0.01, f"code_{i}")
    metrics.observe("/v1/status", 400, 0.01, "Not A Code: 0123abcd")
    metrics.accepted(["pdq", "something-else"])
    got = samples(metrics.exposition().decode())
    assert got[("ncii_hub_held_total", ())] == 3
    codes = {dict(labels)["code"] for (name, labels) in got if name == "ncii_hub_refusals_total"}
    assert len(codes) == 101 and "other" in codes
    assert got[("ncii_hub_refusals_total", (("code", "other"),))] == 51
    assert got[("ncii_hub_hashes_accepted_total", (("algorithm", "other"),))] == 1
