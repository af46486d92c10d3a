"""The person's page for everyone (issue 15): Urdu right to left, the whole flow by keyboard
with visible focus, recovery-code typos named by group, and "remember on this device" kept
across a reload and forgotten in one click. SQLite only: the hub's storage plays no part."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, FileChooser

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

from hubkit import Case, random_pdq
from personkit import (
    PHOTO_NAMES,
    HubProcess,
    PersonPage,
    case_over_http,
    catalogue,
    chromium,
    confirm,
    file_table,
    open_case,
    open_page,
    person,
    pick,
    running_hub,
    send,
    start_case,
    tab_to,
    wait_case_states,
    write_photos,
)

from crypto.case import CaseSecret, RecoveryCodeError


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    tmp = tmp_path_factory.mktemp("person-access")
    with running_hub(tmp, f"sqlite:///{tmp / 'hub.sqlite3'}") as proc:
        yield proc


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def _lines(pp: PersonPage, selector: str) -> dict[str, Any]:
    """The drawn lines of the text of ``selector`` (left and right of each), and its box."""
    found: dict[str, Any] = pp.page.evaluate(
        """(selector) => {
            const el = document.querySelector(selector);
            const range = document.createRange();
            range.selectNodeContents(el);
            const box = el.getBoundingClientRect();
            const lines = [...range.getClientRects()].map((r) => [r.left, r.right]);
            return {lines, left: box.left, right: box.right};
        }""",
        selector,
    )
    return found


def _x(pp: PersonPage, testid: str) -> float:
    box = pp.tid(testid).bounding_box()
    assert box is not None
    return float(box["x"])


def test_urdu_is_laid_out_right_to_left(hub: HubProcess, browser: Browser) -> None:
    ur = catalogue("ur")
    with person(browser, hub.url, "urdu", locale="ur-PK", axe=True) as pp:
        open_page(pp)
        html = pp.page.evaluate("[document.documentElement.lang, document.documentElement.dir]")
        assert html == ["ur", "rtl"]
        heading = "[data-testid='step-heading']"
        assert pp.page.inner_text(heading) == ur["start.title"]
        # Every line of the main heading ends at the right edge of its column.
        seen = _lines(pp, heading)
        assert seen["lines"] and all(abs(r - seen["right"]) <= 2 for _, r in seen["lines"]), seen
        # The primary button sits right of the secondary one, the language menu left of the
        # site's name.
        assert _x(pp, "start-new") > _x(pp, "start-return")
        assert _x(pp, "language") < pp.page.locator(".site-name").bounding_box()["x"]  # type: ignore[index]
        pp.step("urdu-start")
        # Switched to English from the page's own menu: left to right again.
        pp.tid("language").select_option("en")
        pp.page.wait_for_function("document.documentElement.dir === 'ltr'")
        assert pp.page.inner_text(heading) == catalogue("en")["start.title"]
        seen = _lines(pp, heading)
        assert all(abs(left - seen["left"]) <= 2 for left, _ in seen["lines"]), seen
        assert _x(pp, "start-new") < _x(pp, "start-return")
        assert pp.page_errors() == []


def test_the_whole_flow_by_keyboard(hub: HubProcess, browser: Browser, tmp_path: Path) -> None:
    photos = write_photos(tmp_path, PHOTO_NAMES[:2])
    with person(browser, hub.url, "keyboard") as pp:
        # Set long before the key press: Playwright starts catching choosers asynchronously
        # once a handler exists, so one set at the press can miss it on a loaded machine.
        choosers: list[FileChooser] = []
        pp.page.on("filechooser", lambda chooser: choosers.append(chooser))
        open_page(pp)
        tab_to(pp, "start-new")
        pp.page.keyboard.press("Enter")
        pp.wait_screen("eligibility")
        for answer in ("elig-age-yes", "elig-in-yes", "elig-situation-shared"):
            tab_to(pp, answer)
            pp.page.keyboard.press("Space")
            assert pp.tid(answer).is_checked()
        tab_to(pp, "elig-continue")
        pp.page.keyboard.press("Enter")
        pp.tid("recovery-code").wait_for()
        tab_to(pp, "code-kept")
        pp.page.keyboard.press("Space")
        tab_to(pp, "code-continue")
        pp.page.keyboard.press("Enter")
        pp.wait_screen("files")
        tab_to(pp, "pick-files")
        pp.page.keyboard.press("Enter")
        for _ in range(300):  # Playwright delivers events while it waits, not in time.sleep
            if choosers:
                break
            pp.page.wait_for_timeout(50)
        choosers[0].set_files([str(p) for p in photos])
        pp.page.wait_for_function(
            "() => document.querySelectorAll(\"[data-testid='file-item'][data-state='ready']\")"
            ".length === 2"
        )
        assert file_table(pp) == dict.fromkeys(PHOTO_NAMES[:2], "ready")
        tab_to(pp, "files-continue")
        pp.page.keyboard.press("Enter")
        pp.wait_screen("confirm")
        tab_to(pp, "send")
        pp.page.keyboard.press("Enter")
        pp.wait_screen("case", timeout=60_000)
        pp.shot("keyboard-case")
        wait_case_states(pp, "in-log", 2)
        # Withdraw one file, by keyboard: the confirmation takes focus, Enter confirms.
        tab_to(pp, "withdraw-file")
        pp.page.keyboard.press("Enter")
        assert pp.page.evaluate("document.activeElement.dataset.testid") == "withdraw-confirm"
        pp.page.keyboard.press("Enter")
        pp.page.wait_for_function(
            "() => document.querySelectorAll(\"[data-testid='case-file'][data-state='withdrawn']\")"
            ".length === 1"
        )
        pp.shot("keyboard-withdrawn")
        assert pp.page_errors() == []


def _a_typo(code: str, group: int, kind: str) -> str:
    """``code`` with one mistake in ``group`` (1-based): a changed symbol, a letter the
    alphabet has not (U), or a symbol left out."""
    groups = code.split("-")
    g = groups[group - 1]
    if kind == "changed":
        swap = "7" if g[1] != "7" else "8"
        groups[group - 1] = g[0] + swap + g[2:]
    elif kind == "bad-letter":
        groups[group - 1] = g[:2] + "U" + g[3:]
    else:
        groups[group - 1] = g[:1] + g[2:]
    return "-".join(groups)


@pytest.fixture(scope="module")
def known_case(hub: HubProcess) -> Case:
    """A case the hub knows (made over HTTP as the Python client would)."""
    return case_over_http(hub, [random_pdq()])


def test_recovery_code_typos_are_named_by_group(
    hub: HubProcess, browser: Browser, known_case: Case
) -> None:
    texts = catalogue()
    code = known_case.secret.recovery_code()
    with person(browser, hub.url, "typos", axe=True) as pp:
        open_page(pp)
        pp.tid("start-return").click()
        pp.wait_screen("return")
        for group, kind in [(2, "changed"), (5, "changed"), (7, "changed"), (4, "bad-letter")]:
            typo = _a_typo(code, group, kind)
            with pytest.raises(RecoveryCodeError) as python_says:
                CaseSecret.from_recovery_code(typo)
            assert python_says.value.group == group  # the page must agree with crypto/case.py
            pp.tid("return-case-id").fill(known_case.case_id)
            pp.tid("return-code").fill(typo)
            pp.tid("return-open").click()
            message = texts["return.error.group"].replace("{group}", str(group))
            pp.page.wait_for_function(
                "([m]) => document.querySelector(\"[data-testid='return-code-error']\")"
                ".textContent === m",
                arg=[message],
            )
            assert pp.tid("return-code").get_attribute("aria-invalid") == "true"
            assert pp.screen() == "return"
        pp.step("typo-named")
        # A symbol left out: the page names the group when Python does, else asks for 7x4.
        typo = _a_typo(code, 6, "missing")
        try:
            CaseSecret.from_recovery_code(typo)
        except RecoveryCodeError as err:
            want = (
                texts["return.error.group"].replace("{group}", str(err.group))
                if err.group
                else texts["return.error.length"]
            )
        pp.tid("return-code").fill(typo)
        pp.tid("return-open").click()
        pp.page.wait_for_function(
            "([m]) => document.querySelector(\"[data-testid='return-code-error']\")"
            ".textContent === m",
            arg=[want],
        )
        # Written loosely (lower case, spaces, O for 0, no dashes), the right code opens it.
        loose = code.lower().replace("-", " ").replace("0", "o")
        pp.tid("return-code").fill(loose)
        pp.tid("return-open").click()
        pp.wait_screen("case")
        assert pp.tid("case-number").inner_text() == known_case.case_id
        assert pp.page_errors() == []


def test_remember_on_this_device_then_reload_then_forget(
    hub: HubProcess, browser: Browser, tmp_path: Path
) -> None:
    photos = write_photos(tmp_path, PHOTO_NAMES[:1])
    with person(browser, hub.url, "remember") as pp:
        case_id, code = start_case(pp)
        pick(pp, photos)
        confirm(pp)
        send(pp)
        wait_case_states(pp, "in-log", 1)
        pp.tid("remember-device").check()
        pp.page.wait_for_function(
            "async () => (await indexedDB.databases()).length > 0", polling=100
        )
        # What the device keeps names neither the case nor the file.
        stored = pp.page.evaluate(
            """async () => {
                const out = [];
                for (const {name} of await indexedDB.databases()) {
                    const db = await new Promise((ok, no) => {
                        const r = indexedDB.open(name); r.onsuccess = () => ok(r.result);
                        r.onerror = () => no(r.error); });
                    for (const store of db.objectStoreNames) {
                        const all = await new Promise((ok) => {
                            const r = db.transaction(store).objectStore(store).getAll();
                            r.onsuccess = () => ok(r.result); });
                        out.push(JSON.stringify(all, (k, v) => v instanceof ArrayBuffer ||
                            ArrayBuffer.isView(v) ? btoa(String.fromCharCode(
                            ...new Uint8Array(v.buffer ?? v))) : v));
                    }
                    db.close();
                }
                return out.join("\\n");
            }"""
        )
        assert stored
        assert case_id not in stored and Path(PHOTO_NAMES[0]).stem not in stored
        pp.shot("remembered")
        # Reload: the page has forgotten everything in memory; the device offers its list,
        # which opens with the case number and recovery code, file names included.
        pp.page.reload()
        pp.tid("forget-device").wait_for()
        pp.shot("remembered-after-reload")
        open_case(pp, case_id, code)
        pp.wait_screen("case")
        pp.page.wait_for_function(
            "([name]) => [...document.querySelectorAll(\"[data-testid='case-file'] bdi\")]"
            ".some((e) => e.textContent === name)",
            arg=[PHOTO_NAMES[0]],
        )
        assert pp.tid("remember-device").is_checked()
        # Forget, in one click: nothing of this page is left in the browser.
        pp.tid("forget-device").click()
        pp.page.wait_for_function(
            "async () => (await indexedDB.databases()).length === 0", polling=100
        )
        pp.page.reload()
        open_page(pp)
        assert pp.tid("forget-device").count() == 0
        left = pp.page.evaluate(
            "async () => [localStorage.length, sessionStorage.length, document.cookie,"
            " (await caches.keys()).length]"
        )
        assert left == [0, 0, "", 0]
        pp.shot("forgotten")
        pp.traffic.assert_clean(PHOTO_NAMES)
        assert pp.page_errors() == []
