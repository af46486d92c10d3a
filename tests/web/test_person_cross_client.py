"""One case, two clients (issue 15, "interoperable both ways"), on SQLite and PostgreSQL: a
case made in the page is recovered by the real ``ncii-client`` (a subprocess) from its
recovery code, whose status shows the page's fingerprints (those ``hashing`` computes)
and whose receipts verify; a withdrawal made by the CLI shows in the page. A case made by
``ncii-client case new`` + ``submit`` opens in the page with its number and recovery code,
shows its files in the public log, and is withdrawn from the page, as the CLI then sees."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from hashing.image import hash_image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from personkit import (
    PHOTO_NAMES,
    HubProcess,
    case_states,
    chromium,
    confirm,
    hub_counts,
    hub_on,
    open_case,
    person,
    pick,
    run_client,
    send,
    start_case,
    wait_case_states,
    write_photos,
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HubProcess, str]]:
    with hub_on(request.param, tmp_path_factory.mktemp("person-cross"), request) as hub:
        yield hub


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def _json(result: Any) -> Any:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "null")


def _hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def test_a_case_made_in_the_page_works_in_the_cli(
    stack: tuple[HubProcess, str], browser: Browser, tmp_path: Path
) -> None:
    hub, database_url = stack
    photos = write_photos(tmp_path / "photos", PHOTO_NAMES[:2])
    home = tmp_path / "cli-home"
    with person(browser, hub.url, f"page-to-cli-{database_url.split(':')[0]}") as pp:
        case_id, code = start_case(pp)
        pick(pp, photos)
        confirm(pp)
        send(pp)
        wait_case_states(pp, "in-log", 2)

        recovered = run_client(home, "case", "recover", "--hub", hub.url, "--json", "-", stdin=code)
        assert recovered.returncode == 0, recovered.stdout + recovered.stderr
        assert case_id in recovered.stdout
        status = _json(run_client(home, "status", "--json", "--case", case_id))
        additions = [e for e in status["entries"] if e["kind"] == "addition"]
        assert len(additions) == 6 and all(e["state"] == "integrated" for e in additions)
        # The page's fingerprints are those the Python client computes for the same files.
        sent = {(e["hash"]["algorithm"], e["hash"]["hash"]) for e in additions}
        for path in photos:
            data = path.read_bytes()
            assert ("md5", hashlib.md5(data).hexdigest()) in sent
            assert ("sha256", hashlib.sha256(data).hexdigest()) in sent
            pdq = hash_image(data).hex()
            assert min(_hamming(pdq, h) for alg, h in sent if alg == "pdq") <= 2
        fetched = _json(run_client(home, "receipts", "fetch", "--json", "--case", case_id))
        assert fetched["included"] == 6 and fetched["pending"] == 0
        verified = run_client(home, "receipts", "verify")
        assert verified.returncode == 0 and "6 receipt(s) verified" in verified.stdout, (
            verified.stdout + verified.stderr
        )

        # The CLI withdraws the first photo's fingerprints; the page shows it withdrawn.
        first = [e["entry_id"] for e in additions[:3]]
        withdrawn = run_client(home, "withdraw", "--yes", "--case", case_id, *first)
        assert withdrawn.returncode == 0, withdrawn.stdout + withdrawn.stderr
        pp.tid("status-refresh").click()
        pp.page.wait_for_function(
            "() => document.querySelectorAll(\"[data-testid='case-file'][data-state='withdrawn']\")"
            ".length === 1"
        )
        assert sorted(case_states(pp)) == ["in-log", "withdrawn"]
        pp.shot("withdrawn-by-cli")
        pp.traffic.assert_clean(PHOTO_NAMES, recovery_code=code)
    assert hub_counts(database_url, case_id)["cases"] == 1


def test_a_case_made_by_the_cli_works_in_the_page(
    stack: tuple[HubProcess, str], browser: Browser, tmp_path: Path
) -> None:
    hub, database_url = stack
    photos = write_photos(tmp_path / "photos", PHOTO_NAMES)
    home = tmp_path / "cli-home"
    made = _json(run_client(home, "case", "new", "--json"))
    case_id, code = made["case_id"], made["recovery_code"]
    submitted = run_client(
        home, "submit", "--hub", hub.url, "--yes", "--wait", "--no-progress", *map(str, photos)
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    with person(browser, hub.url, f"cli-to-page-{database_url.split(':')[0]}") as pp:
        open_case(pp, case_id, code)
        pp.wait_screen("case")
        assert pp.tid("case-number").inner_text() == case_id
        # The page never saw the files: one row per photo, unnamed, each in the log with its
        # receipt checked in the page.
        wait_case_states(pp, "in-log", 3)
        pp.shot("cli-case-in-page")
        pp.tid("withdraw-all").click()
        pp.tid("withdraw-all-confirm").click()
        pp.tid("case-withdrawn").wait_for()
        pp.shot("cli-case-withdrawn-in-page")
        pp.traffic.assert_clean(PHOTO_NAMES, recovery_code=code)
        assert pp.page_errors() == []
    status = _json(run_client(home, "status", "--json"))
    assert status["withdrawn"] is True
    assert hub_counts(database_url, case_id)["cases"] == 1
