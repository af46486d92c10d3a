"""A hub that withholds batches from one partner (issue 12 finding 7): the partner's feed
lags the verified checkpoint. ``ncii-partner sync`` reports the gap (text and ``--json``
``lag``), warns once it outlived a sync, and exits 1 (FeedLagError) once it persists past
``--lag-grace``; a hub that keeps sealing new entries never trips it."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from feedkit import FeedKit, Rewriter
from hubkit import Case, mixed_hashes, post, wait_for_size

import partner_sdk.cli as partner_cli
from partner_sdk import Partner
from partner_sdk.errors import FeedLagError

Forward = Any


class Clock:
    """The partner's wall clock (``Partner(clock=...)``), moved forward by the test instead of
    sleeping: the gap's age is whole seconds of this clock. The hub sees the same skew in the
    signed requests' timestamps (a few seconds, well inside its window)."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


@pytest.fixture
def clock() -> Clock:
    return Clock()


def withhold_after(position: int) -> Rewriter:
    """A lying hub proxy: the batch list omits every batch ending after ``position``."""

    def hook(request: httpx.Request, forward: Forward) -> httpx.Response:
        response: httpx.Response = forward(request)
        if request.url.path != "/v1/feed/batches":
            return response
        body = response.json()
        body["batches"] = [b for b in body["batches"] if b["end"] <= position]
        body["next"] = None
        return httpx.Response(200, json=body)

    return Rewriter(hook)


def cli_sync(
    kit: FeedKit,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    directory: Path,
    *args: str,
    transport: httpx.BaseTransport | None = None,
    clock: Clock | None = None,
) -> tuple[int, str, str]:
    partner = functools.partial(Partner, transport=transport, clock=clock or time.time)
    monkeypatch.setattr(partner_cli, "Partner", partner)
    code = partner_cli.main(
        ["sync", "--dir", str(directory), "--hub", kit.hub.url, "--log-key", kit.log_key, *args]
    )
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def add(kit: FeedKit, client: httpx.Client, n: int, size: int) -> int:
    assert post(client, "/v1/submissions", Case().submission(mixed_hashes(n))).status_code == 202
    wait_for_size(client, size + n)
    kit.wait_sealed(size + n)
    return size + n


def test_withheld_batches_are_reported_then_fail_after_the_grace(
    kit: FeedKit,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
) -> None:
    a = kit.new_partner("alpha")
    with kit.hub.client() as client:
        size = add(kit, client, 10, 0)
        code, out, _ = cli_sync(kit, capsys, monkeypatch, a, "--json")
        assert code == 0 and json.loads(out)["lag"] is None
        size = add(kit, client, 9, size)

        # First sighting: reported, not yet an error (it may be a hub still sealing).
        hiding = withhold_after(10)
        code, out, err = cli_sync(
            kit, capsys, monkeypatch, a, "--json", transport=hiding, clock=clock
        )
        summary = json.loads(out)
        assert code == 0 and summary["cursor"] == 10 and summary["checkpoint_size"] == size
        lag = summary["lag"]
        assert lag["entries"] == 9 and lag["seconds"] == 0 and lag["exceeded"] is False
        assert lag["grace"] == 600 and "error" not in summary
        first_seen = lag["since"]

        clock.ahead += 1.2  # as if 1.2 s passed
        # Still missing at the next sync: a warning on stderr with the gap and its age.
        code, out, err = cli_sync(kit, capsys, monkeypatch, a, transport=hiding, clock=clock)
        assert code == 0
        assert "cursor 10 of verified checkpoint 19" in out
        assert "warning" in err and "9 entries" in err and "persisted for" in err

        # Past the grace: exit 1, FeedLagError, the summary (with lag) still printed.
        code, out, err = cli_sync(
            kit,
            capsys,
            monkeypatch,
            a,
            "--json",
            "--lag-grace",
            "0.5",
            transport=hiding,
            clock=clock,
        )
        summary = json.loads(out)
        assert code == 1 and summary["error"] == "FeedLagError"
        assert summary["lag"]["exceeded"] is True and summary["lag"]["since"] == first_seen
        assert summary["lag"]["seconds"] >= 1 and summary["cursor"] == 10
        assert "FeedLagError" not in err and "withholds verified entries" in err
        with (
            pytest.raises(FeedLagError) as raised,
            kit.partner(a, transport=hiding, lag_grace=0.5, clock=clock) as p,
        ):
            p.sync()
        assert raised.value.summary.lag is not None and raised.value.summary.lag.entries == 9

        # The hub delivers: the gap closes and the state is cleared.
        code, out, err = cli_sync(
            kit, capsys, monkeypatch, a, "--json", "--lag-grace", "0.5", clock=clock
        )
        summary = json.loads(out)
        assert code == 0 and summary["cursor"] == size and summary["lag"] is None and not err
        with kit.partner(a) as p:
            assert p.store.lag() is None


def test_a_hub_that_keeps_sealing_does_not_trip_the_grace(
    kit: FeedKit,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
) -> None:
    a = kit.new_partner("alpha")
    with kit.hub.client() as client:
        size = add(kit, client, 6, 0)
        size = add(kit, client, 5, size)
        # The newest batch is "not sealed yet" at each sync; each sync receives the batch that
        # was missing at the previous one while a new one is pending.
        code, out, _ = cli_sync(
            kit,
            capsys,
            monkeypatch,
            a,
            "--json",
            "--lag-grace",
            "0.5",
            transport=withhold_after(6),
            clock=clock,
        )
        assert code == 0 and json.loads(out)["lag"]["entries"] == 5
        clock.ahead += 1.2  # as if 1.2 s passed
        delivered = size
        size = add(kit, client, 4, size)
        code, out, err = cli_sync(
            kit,
            capsys,
            monkeypatch,
            a,
            "--json",
            "--lag-grace",
            "0.5",
            transport=withhold_after(delivered),
            clock=clock,
        )
        summary = json.loads(out)
        assert code == 0 and summary["cursor"] == delivered
        assert summary["lag"]["entries"] == 4 and summary["lag"]["seconds"] == 0 and not err
