"""Clock skew between signer and hub. The hub's clock cannot be moved, so envelopes and partner
requests are signed with shifted timestamps (crypto.envelope through hubkit.Case, the partner
SDK's injectable clock, an offline .ncii bundle signed in the past). Within the window
(window_seconds, default 300) everything is accepted; beyond it the hub answers 401
stale_timestamp and stores nothing; the client CLI tells the person to fix the clock. Submissions
(offline bundles) may be older: up to submission_max_age (default 30 days) in the past."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubkit import (
    Case,
    HubProcess,
    mixed_hashes,
    post,
    settled_size,
    verifier_of,
    wait_for_size,
)
from syskit import FEED_FAST, new_partner, sealed_through, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))

from clientkit import run_cli

from client.bundle import Bundle
from partner_sdk import Partner
from partner_sdk.errors import HubRefusedError

WINDOW = 300  # window_seconds: any request's time ahead of the hub, status/withdrawal behind
MAX_AGE = 600  # submission_max_age (set low here): how old a signed submission may be
SUBMISSION_SKEWS = [
    (-(MAX_AGE - 20), True), (-(WINDOW + 60), True), (0, True), (WINDOW - 20, True),
    (-(MAX_AGE + 60), False), (WINDOW + 60, False), (-86400, False), (10 * 365 * 86400, False),
]  # fmt: skip
REQUEST_SKEWS = [
    (-(WINDOW - 20), True), (0, True), (WINDOW - 20, True),
    (-(WINDOW + 60), False), (WINDOW + 60, False), (-86400, False),
]  # fmt: skip
CASES = [("submission", k, ok) for k, ok in SUBMISSION_SKEWS] + [
    (p, k, ok) for p in ("status-query", "withdrawal") for k, ok in REQUEST_SKEWS
]


def _shifted(skew: float) -> float:
    return time.time() + skew


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """One hub for the module: every test uses fresh cases and partners."""
    base = tmp_path_factory.mktemp("skew")
    proc = HubProcess(
        base / "data",
        f"sqlite:///{base / 'hub.sqlite3'}",
        (*FEED_FAST, "--set", f"submission_max_age={MAX_AGE}"),
    ).start()
    yield proc
    proc.kill()


@pytest.mark.parametrize(("purpose", "skew", "ok"), CASES, ids=[f"{p}/{k}" for p, k, _ in CASES])
def test_envelopes_signed_with_skewed_clock(
    hub: HubProcess, purpose: str, skew: int, ok: bool
) -> None:
    case = Case()
    when = int(time.time()) + skew
    with hub.client() as client:
        if purpose != "submission":  # the case must exist first
            r = post(client, "/v1/submissions", case.submission(mixed_hashes(1)))
            assert r.status_code == 202
        size = settled_size(client)
        if purpose == "submission":
            r = post(client, "/v1/submissions", case.submission(mixed_hashes(2), timestamp=when))
        elif purpose == "status-query":
            r = post(client, "/v1/status", case.status_query(timestamp=when))
        else:
            r = post(client, "/v1/withdrawals", case.withdrawal(None, timestamp=when))
        if ok:
            assert r.status_code in (200, 202), r.text
            return
        assert r.status_code == 401 and r.json()["error"]["code"] == "stale_timestamp"
        # nothing was stored: no new case, no withdrawal
        r = post(client, "/v1/status", case.status_query())
        if purpose == "submission":
            assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_case"
        else:
            assert r.status_code == 200 and not r.json().get("withdrawn")
            assert all(e["withdrawn_by"] is None for e in r.json()["entries"])
        assert int(client.get("/v1/log").json()["size"]) <= size + (purpose != "submission")


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
        clock = functools.partial(_shifted, skew)
        with Partner(directory, hub.url, key, clock=clock) as partner:
            if ok:
                assert partner.sync().cursor >= size
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
