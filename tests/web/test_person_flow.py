"""The person's page, whole, as a person clicks it, against a real hub on SQLite and on
PostgreSQL (issue 15): eligibility, the case and its recovery code, photos fingerprinted in
the page, the confirmation, the case puzzle and sending, receipts checked in the page, a file
withdrawn and then the whole case. axe-core checks every step; every request is recorded and
none goes elsewhere or carries a picture's bytes, a file name or the recovery code. Then a hub
stopped mid-submission: before the person clicks "send", as the envelope is posted (SQLite:
nothing reaches the storage), and after it stored the envelope but before its answer reached
the page (both databases). A calm message; "try again" after the restart sends the
same bytes; the hub's database holds exactly one case."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Route

sys.path.insert(0, str(Path(__file__).resolve().parent))

from personkit import (
    PHOTO_NAMES,
    HubProcess,
    PersonPage,
    case_states,
    catalogue,
    chromium,
    confirm,
    hub_counts,
    hub_on,
    hub_status,
    person,
    pick,
    start_case,
    wait_case_states,
    write_photos,
)

PAGE_POSTS = {"/v1/submissions", "/v1/status", "/v1/withdrawals"}


@pytest.fixture(scope="module")
def sqlite_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HubProcess, str]]:
    """The module's hub on SQLite: ``stack``'s SQLite half, and alone for the cases where
    nothing reaches the hub's storage (each test makes its own case)."""
    with hub_on("sqlite", tmp_path_factory.mktemp("person-sqlite"), request) as hub:
        yield hub


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HubProcess, str]]:
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_stack")
        return
    with hub_on(request.param, tmp_path_factory.mktemp("person-flow"), request) as hub:
        yield hub


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def _paths(pp: PersonPage) -> list[tuple[str, str]]:
    return [(s.method, "/" + s.url.split("/", 3)[3].split("?")[0]) for s in pp.traffic.seen]


def test_the_whole_flow_as_a_person(
    stack: tuple[HubProcess, str], browser: Browser, tmp_path: Path
) -> None:
    hub, database_url = stack
    photos = write_photos(tmp_path)
    with person(browser, hub.url, f"flow-{database_url.split(':')[0]}", axe=True) as pp:
        case_id, code = start_case(pp)
        table = pick(pp, photos)
        assert table == dict.fromkeys(PHOTO_NAMES, "ready")
        pp.step("files-read")
        assert confirm(pp) == 3 * len(photos)  # PDQ, MD5 and SHA-256 of each photo
        pp.tid("send").click()
        pp.wait_screen("case", timeout=60_000)
        pp.step("case-sent")
        wait_case_states(pp, "in-log", len(photos))
        pp.step("case-in-log")
        assert hub_counts(database_url, case_id) == {"cases": 1, "entries": 9}

        # One file withdrawn: its three fingerprints, and only those.
        pp.tid("withdraw-file").first.click()
        pp.tid("withdraw-confirm").wait_for()
        pp.step("withdraw-one-confirm")
        pp.tid("withdraw-confirm").click()
        pp.page.wait_for_function(
            "() => document.querySelectorAll(\"[data-testid='case-file'][data-state='withdrawn']\")"
            ".length === 1"
        )
        pp.step("withdrawn-one")
        assert sorted(case_states(pp)) == ["in-log", "in-log", "withdrawn"]
        entries = hub_status(hub, code)["entries"]
        additions = [e for e in entries if e["kind"] == "addition"]
        assert sum(e["withdrawn"] for e in additions) == 3 and len(additions) == 9

        # Everything withdrawn: the case is closed for good.
        pp.tid("withdraw-all").click()
        pp.tid("withdraw-all-confirm").wait_for()
        pp.step("withdraw-all-confirm")
        pp.tid("withdraw-all-confirm").click()
        pp.tid("case-withdrawn").wait_for()
        pp.step("withdrawn-all")
        status = hub_status(hub, code)
        assert status["withdrawn"] is True
        assert all(e["withdrawn"] for e in status["entries"] if e["kind"] == "addition")

        pp.traffic.assert_clean(PHOTO_NAMES, recovery_code=code)
        # What the page asked for: its own files, the puzzle, status, log checkpoint and
        # tiles; it posted only envelopes to the three case endpoints.
        for method, path in _paths(pp):
            if method == "POST":
                assert path in PAGE_POSTS, path
            else:
                assert method == "GET" and (
                    path in ("/", "/v1/case-puzzle", "/checkpoint")
                    or path.startswith(("/s/", "/tile/"))
                ), path
        assert pp.page_errors() == []


def _to_confirm(pp: PersonPage, photos: list[Path]) -> tuple[str, str]:
    case_id, code = start_case(pp)
    pick(pp, photos)
    confirm(pp)
    return case_id, code


def _calm_error(pp: PersonPage, texts: dict[str, Any]) -> None:
    """The failure screen: what happened and that nothing is lost, with "try again"."""
    pp.tid("send-error").wait_for(timeout=60_000)
    assert pp.tid("send-error").get_attribute("data-code") in ("network", "timeout")
    said = pp.tid("send-error").inner_text()
    assert texts["send.failed.kept"] in said
    assert texts["send.error.network"] in said or texts["send.error.timeout"] in said
    assert pp.tid("send-retry").is_visible()


def test_hub_stopped_before_the_submission_reaches_it(
    sqlite_stack: tuple[HubProcess, str], browser: Browser, tmp_path: Path
) -> None:
    """The hub goes away while the person reads the confirmation, and comes back."""
    hub, database_url = sqlite_stack
    photos = write_photos(tmp_path, PHOTO_NAMES[:2])
    with person(browser, hub.url, f"stopped-{database_url.split(':')[0]}") as pp:
        case_id, code = _to_confirm(pp, photos)
        hub.kill()
        try:
            pp.tid("send").click()
            _calm_error(pp, catalogue())
            pp.shot("hub-stopped")
            assert hub_counts(database_url, case_id)["cases"] == 0
        finally:
            hub.start()
        pp.tid("send-retry").click()
        pp.wait_screen("case", timeout=60_000)
        wait_case_states(pp, "in-log", 2)
        pp.shot("hub-back")
        assert hub_counts(database_url, case_id) == {"cases": 1, "entries": 6}
        pp.traffic.assert_clean(PHOTO_NAMES, recovery_code=code)


def test_hub_stopped_as_the_submission_arrives(
    sqlite_stack: tuple[HubProcess, str], browser: Browser, tmp_path: Path
) -> None:
    """The page has its modules and has solved the puzzle; the hub dies as the envelope is
    posted, before reading it."""
    hub, database_url = sqlite_stack
    photos = write_photos(tmp_path, PHOTO_NAMES[:2])
    with person(browser, hub.url, f"stopped-posting-{database_url.split(':')[0]}") as pp:
        case_id, code = _to_confirm(pp, photos)

        def stopped(route: Route) -> None:
            pp.hold.clear()
            hub.kill()
            route.continue_()  # to a closed port: refused

        pp.hold["/v1/submissions"] = stopped
        try:
            pp.tid("send").click()
            _calm_error(pp, catalogue())
            pp.shot("hub-stopped-posting")
            assert hub_counts(database_url, case_id)["cases"] == 0
        finally:
            pp.hold.clear()
            hub.start()
        pp.tid("send-retry").click()
        pp.wait_screen("case", timeout=60_000)
        wait_case_states(pp, "in-log", 2)
        assert hub_counts(database_url, case_id) == {"cases": 1, "entries": 6}
        pp.traffic.assert_clean(PHOTO_NAMES, recovery_code=code)


def test_hub_stopped_after_storing_the_submission(
    stack: tuple[HubProcess, str], browser: Browser, tmp_path: Path
) -> None:
    """The hub stores the case, then dies before its answer reaches the page: the retry
    re-sends the very same envelope and the hub answers it as the one it already holds."""
    hub, database_url = stack
    photos = write_photos(tmp_path, PHOTO_NAMES[1:])
    with person(browser, hub.url, f"lost-answer-{database_url.split(':')[0]}", axe=True) as pp:
        case_id, code = _to_confirm(pp, photos)

        def stored_then_stopped(route: Route) -> None:
            answer = route.fetch()  # the hub has the envelope and answers
            if answer.status // 100 != 2:  # e.g. 428: the puzzle asked for first
                route.fulfill(response=answer)
                return
            pp.hold.clear()  # once
            hub.kill()
            route.abort("connectionreset")

        pp.hold["/v1/submissions"] = stored_then_stopped
        try:
            pp.tid("send").click()
            _calm_error(pp, catalogue())
            pp.step("answer-lost")
            assert hub_counts(database_url, case_id) == {"cases": 1, "entries": 6}
        finally:
            pp.hold.clear()
            hub.start()
        pp.tid("send-retry").click()
        pp.wait_screen("case", timeout=60_000)
        wait_case_states(pp, "in-log", 2)
        assert hub_counts(database_url, case_id) == {"cases": 1, "entries": 6}
        # The retries (the hub client's own, then the person's) sent the very same bytes.
        bodies = [s.body for s in pp.traffic.posts("/v1/submissions")]
        assert len(bodies) >= 2 and len(set(bodies)) == 1
        pp.traffic.assert_clean(PHOTO_NAMES, recovery_code=code)
        assert len(hub_status(hub, code)["entries"]) == 6


def test_receipts_retry_after_a_network_failure_and_a_forged_proof_is_an_alarm(
    sqlite_stack: tuple[HubProcess, str], browser: Browser, tmp_path: Path
) -> None:
    """The page checks each receipt from the public tiles. A tile that fails to arrive says
    nothing about the log, so the page asks again; a tile that arrives changed means the log's
    own evidence does not add up: the person is told so plainly (not "try again later") and
    pointed to the helpline."""
    hub, _database_url = sqlite_stack
    photos = write_photos(tmp_path, PHOTO_NAMES[:1])
    texts = catalogue()
    mode = {"tiles": "down"}

    def tiles(route: Any) -> None:
        if mode["tiles"] == "down":
            route.abort("connectionreset")
            return
        response = route.fetch()
        body = bytearray(response.body())
        body[len(body) // 2] ^= 1  # one bit of one hash
        route.fulfill(response=response, body=bytes(body))

    with person(browser, hub.url, "receipts-forged") as pp:
        pp.hold["GET /tile/"] = tiles
        _to_confirm(pp, photos)
        pp.tid("send").click()
        pp.wait_screen("case", timeout=60_000)
        # Tiles unreachable: the file is still waiting, never "could not be checked".
        pp.page.wait_for_function(
            "() => performance.getEntriesByType('resource').some((e) => e.name.includes('/tile/'))",
            timeout=60_000,
        )
        assert case_states(pp) == ["pending"]
        mode["tiles"] = "forged"
        wait_case_states(pp, "mismatch", 1)
        status = pp.tid("case-file-status").inner_text()
        assert status == texts["case.state.mismatch"]
        pp.shot("receipt-mismatch")
