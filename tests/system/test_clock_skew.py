"""Clock skew between signer and hub. The hub's clock cannot be moved, so envelopes and partner
requests are signed with shifted timestamps (crypto.envelope through hubkit.Case, the partner
SDK's injectable clock, an offline .ncii bundle signed in the past). Within the window
(window_seconds, default 300) everything is accepted; beyond it the hub answers 401
stale_timestamp and stores nothing; the client CLI tells the person to fix the clock. Submissions
(offline bundles) may be older: up to submission_max_age (default 30 days) in the past."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from conftest import HubFactory
from hubkit import Case, HubProcess, mixed_hashes, post, verifier_of, wait_for_size
from syskit import FEED_FAST, new_partner, sealed_through, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))

from clientkit import run_cli

from client.bundle import Bundle
from partner_sdk import Partner
from partner_sdk.errors import HubRefusedError

WINDOW = 300
MAX_AGE = 30 * 86400  # submission_max_age: submissions (offline bundles) may be this old
WITHIN = [-(WINDOW - 20), -60, 0, 60, WINDOW - 20]
BEYOND = [-(WINDOW + 60), WINDOW + 60, -86400, 10 * 365 * 86400]


@pytest.fixture
def hub(sqlite_hub_factory: HubFactory) -> HubProcess:
    return sqlite_hub_factory(*FEED_FAST)


@pytest.mark.parametrize("skew", WITHIN + BEYOND)
def test_envelopes_signed_with_skewed_clock(hub: HubProcess, skew: int) -> None:
    case = Case()
    ok = skew in WITHIN
    submission_ok = -MAX_AGE <= skew <= WINDOW
    with hub.client() as client:
        first = post(client, "/v1/submissions", Case().submission(mixed_hashes(1)))
        assert first.status_code == 202
        size = wait_for_size(client, 1)
        r = post(
            client,
            "/v1/submissions",
            case.submission(mixed_hashes(2), timestamp=int(time.time()) + skew),
        )
        if submission_ok:
            assert r.status_code == 202, r.text
        else:
            assert r.status_code == 401 and r.json()["error"]["code"] == "stale_timestamp"
        for raw in (
            case.status_query(timestamp=int(time.time()) + skew),
            case.withdrawal(None, timestamp=int(time.time()) + skew),
        ):
            path = "/v1/status" if b"status-query" in raw else "/v1/withdrawals"
            r = post(client, path, raw)
            if ok:
                assert r.status_code in (200, 202), r.text
            else:
                assert r.status_code == 401 and r.json()["error"]["code"] == "stale_timestamp"
        if not submission_ok:  # nothing was stored: the log holds only the first submission
            r = post(client, "/v1/status", case.status_query())
            assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_case"
            assert int(client.get("/v1/log").json()["size"]) == size


def test_partner_with_skewed_clock(hub: HubProcess, tmp_path: Path) -> None:
    skews = ((WINDOW - 20, True), (-(WINDOW + 60), False), (WINDOW + 60, False))
    dirs = [new_partner(hub, tmp_path / f"p{i}", f"p{i}") for i in range(len(skews))]
    with hub.client() as client:
        key, _ = verifier_of(client)
        r = post(client, "/v1/submissions", Case().submission(mixed_hashes(3)))
        assert r.status_code == 202
        size = wait_for_size(client, 3)
    wait_until(lambda: sealed_through(hub) >= size)
    for directory, (skew, ok) in zip(dirs, skews, strict=True):
        with Partner(directory, hub.url, key, clock=lambda s=skew: time.time() + s) as partner:
            if ok:
                assert partner.sync().cursor == size
            else:
                with pytest.raises(HubRefusedError) as caught:
                    partner.sync()
                assert caught.value.code == "stale_timestamp"
                assert partner.store.state().cursor == 0


@pytest.mark.parametrize(
    "age", [60, WINDOW + 60, MAX_AGE + 60], ids=["fresh", "past-window", "stale"]
)
def test_client_cli_upload_of_a_bundle_signed_earlier(
    hub: HubProcess, tmp_path: Path, age: int
) -> None:
    case = Case()
    bundle = tmp_path / "case.ncii"
    signed = int(time.time()) - age
    bundle.write_bytes(Bundle([case.submission(mixed_hashes(2), timestamp=signed)]).encode())
    result = run_cli("upload", str(bundle), "--hub", hub.url, home=tmp_path / "home")
    if age < MAX_AGE:
        assert result.code == 0, result.err
    else:
        assert result.code != 0
        assert "clock" in result.err and "stale_timestamp" in result.err
        assert "Traceback" not in result.err
