"""The hub's witness metrics with real witness processes: after both cosign, each one's
cosigned size equals the log's and its lag is 0; once one is killed, its failures are counted
under its configured name and its lag grows, while the other keeps up. The same numbers reach
``ncii-hub stats``."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from witkit import WitnessedFactory, cosigned_by, grow

from hub.cli import main


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_witness_status_and_failures_by_name(
    witnessed: WitnessedFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = witnessed(n=2)
    size = grow(kit.hub, 4)
    cosigned_by(kit.hub, size, 2)
    got = scrape(kit.hub.url)
    for name in ("w1", "w2"):
        assert got[("ncii_hub_witness_cosigned_size", (("witness", name),))] == size
        assert got[("ncii_hub_witness_lag_entries", (("witness", name),))] == 0
        assert got[("ncii_hub_witness_consecutive_failures", (("witness", name),))] == 0
        assert got[("ncii_hub_witness_failures_total", (("witness", name),))] == 0
        assert got[("ncii_hub_witness_cosigned_timestamp_seconds", (("witness", name),))] > 0

    kit.witnesses[1].kill()
    bigger = grow(kit.hub, 2)
    cosigned_by(kit.hub, bigger, 1)
    deadline = time.monotonic() + 30
    while True:
        got = scrape(kit.hub.url)
        if got[("ncii_hub_witness_failures_total", (("witness", "w2"),))] >= 1:
            break
        assert time.monotonic() < deadline, "the dead witness's failures were never counted"
        time.sleep(0.1)
    assert got[("ncii_hub_witness_cosigned_size", (("witness", "w1"),))] == bigger
    assert got[("ncii_hub_witness_cosigned_size", (("witness", "w2"),))] == size
    assert got[("ncii_hub_witness_lag_entries", (("witness", "w2"),))] == bigger - size
    assert got[("ncii_hub_witness_failures_total", (("witness", "w1"),))] == 0

    assert main(["stats", "--data", str(kit.hub.data_dir), "--database-url",
                 kit.hub.database_url, "--json"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    # stats reads the database only: a witness is named by the name in its verifier key
    sizes = {w["verifier_key"]: w["cosigned_size"] for w in report["witnesses"]}
    assert sizes == dict(zip(kit.witness_keys, (bigger, size), strict=True))
    assert {w["name"] for w in report["witnesses"]} == {k.split("+")[0] for k in kit.witness_keys}
