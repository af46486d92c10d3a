"""Choosing files in the person's page (issue 15): fingerprints are made with the network cut,
files that cannot give a fingerprint each get their own plain message, and nothing of any
file (bytes, name) is ever in a request. SQLite only: the hub's storage plays no part here."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

sys.path.insert(0, str(Path(__file__).resolve().parent))

from personkit import (
    PHOTO_NAMES,
    HubProcess,
    catalogue,
    chromium,
    file_rows,
    person,
    pick,
    running_hub,
    start_case,
    write_bad_files,
    write_photos,
)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    tmp = tmp_path_factory.mktemp("person-files")
    with running_hub(tmp, f"sqlite:///{tmp / 'hub.sqlite3'}") as proc:
        yield proc


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def test_fingerprints_are_made_with_the_network_cut(
    hub: HubProcess, browser: Browser, tmp_path: Path
) -> None:
    photos = write_photos(tmp_path)
    with person(browser, hub.url, "offline") as pp:
        start_case(pp)
        pp.context.set_offline(True)
        mark = pp.traffic.mark()
        table = pick(pp, photos)
        pp.shot("offline-read")
        assert table == dict.fromkeys(PHOTO_NAMES, "ready"), file_rows(pp)
        # Nothing tried to leave the browser while the files were read.
        assert pp.traffic.since(mark) == []
        assert pp.tid("files-continue").is_enabled()
        pp.context.set_offline(False)
        pp.traffic.assert_clean(PHOTO_NAMES)
        assert pp.page_errors() == []


def test_each_bad_file_gets_its_own_message(
    hub: HubProcess, browser: Browser, tmp_path: Path
) -> None:
    bad = write_bad_files(tmp_path / "bad")
    good = write_photos(tmp_path / "good", PHOTO_NAMES[:1])
    texts = catalogue()
    with person(browser, hub.url, "bad-files", axe=True) as pp:
        start_case(pp)
        pick(pp, [*bad.values(), *good])
        pp.step("bad-files")
        rows = file_rows(pp)
        assert rows[PHOTO_NAMES[0]]["state"] == "ready"
        expected = {
            "truncated": ("error", "damaged"),
            "text": ("skipped", "not-media"),
            "heic": ("error", "heic"),
            "empty": ("error", "empty"),
        }
        for what, (state, reason) in expected.items():
            row = rows[bad[what].name]
            assert (row["state"], row["why"], row["todo"]) == (
                state,
                texts[f"why.{reason}"],
                texts[f"todo.{reason}"],
            ), (what, row)
        # Only the good photo goes on: the confirmation counts its fingerprints alone.
        pp.tid("files-continue").click()
        pp.wait_screen("confirm")
        pp.step("bad-files-confirm")
        assert pp.tid("confirm-unsent").is_visible()
        pp.traffic.assert_clean([*PHOTO_NAMES, *(p.name for p in bad.values())])
        assert pp.page_errors() == []
