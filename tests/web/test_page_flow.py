"""The person's page, clicked through as a person would, in Debian's Chromium against a real
hub (``ncii-hub serve`` under uvicorn, serving web/ at ``/``), on SQLite and PostgreSQL:
eligibility, a new case, keeping the recovery code, two photos, the confirmation, sending (with
the hub's case puzzle), "in the public log" per file from receipts checked in the page, status,
withdrawing one file, and coming back later with the case number and recovery code. One pass is
made with the keyboard only; Urdu is laid out right to left. Screenshots go to tests/artifacts/.
The adversarial browser tests (network recording, offline, bad files, hub stopped, axe-core)
are tests/web/test_person_*.py; the data-testids used here are listed in web/README.md.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

from hubkit import HubProcess
from webkit import chromium

from crypto.case import CaseSecret

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# Two different photos (PDQ reference images, quality 100): one file item each.
PHOTOS = (
    ("pdq", "images", "bridge-mods", "aaa-orig.jpg"),
    ("pdq", "images", "misc-images", "wee.jpg"),
)
FLOW_TIMEOUT_MS = 90_000


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"page-flow-{name}.png"), full_page=True)


def tid(name: str) -> str:
    return f"[data-testid='{name}']"


def focused_testid(page: Page) -> str | None:
    value: str | None = page.evaluate("document.activeElement?.dataset?.testid ?? null")
    return value


def assert_heading_focused(page: Page, step: str) -> None:
    """Each new step's heading takes focus, so a screen reader starts reading there."""
    page.wait_for_selector(f"section[data-step='{step}']")
    assert page.evaluate("document.activeElement.id") == f"h-{step}"


# The case puzzle on (test hubs ask none by default): the page solves it, with progress.
HUB_SETTINGS = ("--set", "puzzle=true", "--set", "batch_interval=0.2")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module; each test opens its own context (no storage shared)."""
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def sqlite_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """The module's hub on SQLite (each test makes its own case, in its own browser context)."""
    folder = tmp_path_factory.mktemp("page-flow")
    proc = HubProcess(folder / "data", f"sqlite:///{folder / 'hub.sqlite3'}", HUB_SETTINGS)
    yield proc.start()
    proc.kill()


@pytest.fixture(scope="module")
def hub(
    request: pytest.FixtureRequest,
    module_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HubProcess]:
    """The module's hub on SQLite, then one on a fresh PostgreSQL database."""
    if module_database_url.startswith("sqlite"):
        yield request.getfixturevalue("sqlite_hub")
        return
    folder = tmp_path_factory.mktemp("page-flow-postgresql")
    proc = HubProcess(folder / "data", module_database_url, HUB_SETTINGS)
    yield proc.start()
    proc.kill()


@contextlib.contextmanager
def opened(
    browser: Browser, hub: HubProcess, locale: str = "en-GB"
) -> Iterator[tuple[Page, list[str]]]:
    """The page in a fresh context (closed afterwards), and the problems seen on it."""
    context = browser.new_context(locale=locale, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(FLOW_TIMEOUT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))

    def console(message: Any) -> None:
        # Chromium logs every 4xx answer as a failed load; those are checked below by URL.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(f"console: {message.text}")

    def response(answer: Any) -> None:
        # The hub's expected refusals: 404 unknown_case (status of a case not made yet) and
        # 428 puzzle_required. Any other failed answer is a problem.
        path = answer.url[len(hub.url) :]
        expected = (answer.status, path) in {(404, "/v1/status"), (428, "/v1/submissions")}
        if answer.status >= 400 and not expected:
            problems.append(f"HTTP {answer.status} {path}")

    page.on("console", console)
    page.on("response", response)
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(hub.url) else r.abort())
    try:
        page.goto(hub.url + "/")
        page.wait_for_selector("body[data-ready='1']")
        yield page, problems
    finally:
        context.close()


def pick_photos(page: Page, vectors: Path, *, keyboard: bool) -> None:
    files = [str(vectors.joinpath(*p)) for p in PHOTOS]
    if keyboard:
        # The chooser is answered by a handler set before the key press (Playwright turns
        # chooser interception on asynchronously when the first handler is added).
        page.once("filechooser", lambda chooser: chooser.set_files(files))
        page.wait_for_timeout(200)
        page.keyboard.press("Enter")
        page.wait_for_selector(tid("file-item"))
    else:
        page.set_input_files(tid("file-input"), files)
    page.wait_for_selector(f"{tid('files-continue')}:not([disabled])")
    states = page.eval_on_selector_all(tid("file-item"), "els => els.map(e => e.dataset.state)")
    assert states == ["ready", "ready"]
    # Local thumbnails: blob: URLs of the files themselves, never a request to the hub.
    thumbs = page.eval_on_selector_all("img.thumb", "els => els.map(e => e.src)")
    assert len(thumbs) == 2 and all(s.startswith("blob:") for s in thumbs)


def wait_rows(page: Page, states: list[str]) -> None:
    """Waits until the case's rows are in ``states`` (order kept): the page itself refreshes
    status while something is waiting."""
    try:
        page.wait_for_function(
            """(states) => {
                const rows = [...document.querySelectorAll("[data-testid='case-file']")];
                return JSON.stringify(rows.map((e) => e.dataset.state)) === JSON.stringify(states);
            }""",
            arg=states,
            timeout=FLOW_TIMEOUT_MS,
        )
    except PlaywrightTimeout:
        seen = page.eval_on_selector_all(tid("case-file"), "els => els.map(e => e.dataset.state)")
        raise AssertionError(f"case rows {seen}, expected {states}") from None


def test_happy_path_by_mouse(
    hub: HubProcess, browser: Browser, conformance_vectors: Path, module_database_url: str
) -> None:
    db = "sqlite" if module_database_url.startswith("sqlite") else "postgresql"
    with opened(browser, hub) as (page, problems):
        puzzles: list[bool] = []
        page.on(
            "request",
            lambda r: (
                puzzles.append("ncii-case-puzzle" in r.headers)
                if r.url.endswith("/v1/submissions")
                else None
            ),
        )
        shot(page, f"{db}-1-start")
        page.click(tid("start-new"))
        assert_heading_focused(page, "eligibility")
        page.click(tid("elig-continue"))
        assert page.inner_text(tid("elig-error")) != ""
        for name in ("elig-age-yes", "elig-in-yes", "elig-situation-shared"):
            page.click(tid(name))
        shot(page, f"{db}-2-eligibility")
        page.click(tid("elig-continue"))

        page.wait_for_selector(tid("recovery-code"))
        assert_heading_focused(page, "new-case")
        case_id = page.inner_text(tid("case-id"))
        code = page.inner_text(tid("recovery-code"))
        # The page's case is crypto/case.py's: the CLI derives the same case id from the code.
        assert CaseSecret.from_recovery_code(code).case_id() == case_id
        shot(page, f"{db}-3-code")
        with page.expect_download() as download:
            page.click(tid("code-save"))
        saved = Path(download.value.path()).read_text()
        assert code in saved and case_id in saved
        page.click(tid("code-continue"))  # not yet ticked: asked to keep it first
        assert page.inner_text(tid("code-kept-error")) != ""
        page.check(tid("code-kept"))
        page.click(tid("code-continue"))

        assert_heading_focused(page, "files")
        pick_photos(page, conformance_vectors, keyboard=False)
        shot(page, f"{db}-4-files")
        page.click(tid("files-continue"))
        assert_heading_focused(page, "confirm")
        # Two photos: each a PDQ, an MD5 and a SHA-256.
        assert page.get_attribute(tid("confirm-summary"), "data-hashes") == "6"
        shot(page, f"{db}-5-confirm")
        page.click(tid("send"))

        page.wait_for_selector("section[data-step='case']")
        assert page.inner_text(tid("case-number")) == case_id
        assert puzzles and puzzles[-1]  # the case was made with the hub's puzzle solved
        wait_rows(page, ["in-log", "in-log"])
        statuses = page.eval_on_selector_all(
            tid("case-file-status"), "els => els.map(e => e.textContent)"
        )
        assert statuses == ["In the public log", "In the public log"]
        shot(page, f"{db}-6-in-log")

        page.click(f"{tid('case-file')}:first-child {tid('withdraw-file')}")
        page.click(tid("withdraw-confirm"))
        wait_rows(page, ["withdrawn", "in-log"])
        shot(page, f"{db}-7-withdrawn-one")
        assert problems == []


def _tab_to(page: Page, testid: str, limit: int = 60) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused_testid(page) == testid:
            return
    raise AssertionError(f"Tab never reached {testid}")


def test_keyboard_only_then_return_later_and_remember(
    sqlite_hub: HubProcess, browser: Browser, conformance_vectors: Path
) -> None:
    """The whole flow with Tab, Space and Enter only (SQLite), then coming back: a typo in the
    recovery code is named by its group, the case opens, and "remember on this device" keeps
    the file names (encrypted) until "forget this device"."""
    with opened(browser, sqlite_hub) as (page, problems):
        kb = page.keyboard
        _tab_to(page, "start-new")
        kb.press("Enter")
        assert_heading_focused(page, "eligibility")
        for name in ("elig-age-yes", "elig-in-yes", "elig-situation-shared"):
            _tab_to(page, name)
            kb.press("Space")
        _tab_to(page, "elig-continue")
        kb.press("Enter")
        assert_heading_focused(page, "new-case")
        case_id = page.inner_text(tid("case-id"))
        code = page.inner_text(tid("recovery-code"))
        _tab_to(page, "code-kept")
        kb.press("Space")
        _tab_to(page, "code-continue")
        kb.press("Enter")
        assert_heading_focused(page, "files")
        _tab_to(page, "pick-files")
        pick_photos(page, conformance_vectors, keyboard=True)
        _tab_to(page, "files-continue")
        kb.press("Enter")
        assert_heading_focused(page, "confirm")
        _tab_to(page, "send")
        kb.press("Enter")
        page.wait_for_selector("section[data-step='case']")
        wait_rows(page, ["in-log", "in-log"])
        _tab_to(page, "remember-device")
        kb.press("Space")
        page.wait_for_selector(tid("remembered-panel"))
        _tab_to(page, "withdraw-file")
        kb.press("Enter")
        assert focused_testid(page) == "withdraw-confirm"
        kb.press("Enter")
        wait_rows(page, ["withdrawn", "in-log"])
        shot(page, "keyboard-case")
        _tab_to(page, "close-case")
        kb.press("Enter")
        assert_heading_focused(page, "start")

        # Back later (same browser: it remembers the case's file list, encrypted).
        page.wait_for_selector(tid("remembered-panel"))
        _tab_to(page, "start-return")
        kb.press("Enter")
        assert_heading_focused(page, "return")
        groups = code.split("-")
        typo = "-".join(
            [*groups[:2], ("0" if groups[2][0] != "0" else "1") + groups[2][1:], *groups[3:]]
        )
        _tab_to(page, "return-case-id")
        kb.type(case_id.lower())
        _tab_to(page, "return-code")
        kb.type(typo)
        kb.press("Enter")
        page.wait_for_selector(f"{tid('return-code-error')}:not(:empty)")
        assert "3" in page.inner_text(tid("return-code-error"))
        assert focused_testid(page) == "return-code"
        shot(page, "keyboard-return-typo")
        page.fill(tid("return-code"), code.lower().replace("-", " "))
        kb.press("Enter")
        page.wait_for_selector("section[data-step='case']")
        wait_rows(page, ["withdrawn", "in-log"])
        names = page.eval_on_selector_all(
            f"{tid('case-file')} .file-name", "els => els.map(e => e.textContent)"
        )
        assert names == ["aaa-orig.jpg", "wee.jpg"]
        shot(page, "keyboard-returned")
        _tab_to(page, "forget-device")
        kb.press("Enter")
        page.wait_for_selector(tid("remembered-panel"), state="detached")
        assert page.evaluate("document.activeElement !== document.body")
        assert problems == []


def test_urdu_is_right_to_left(sqlite_hub: HubProcess, browser: Browser) -> None:
    with opened(browser, sqlite_hub, locale="ur-PK") as (page, problems):
        root = page.evaluate("[document.documentElement.lang, document.documentElement.dir]")
        assert root == ["ur", "rtl"]
        page.click(tid("start-new"))
        heading = page.locator(tid("step-heading"))
        box = heading.bounding_box()
        width = page.evaluate("document.documentElement.clientWidth")
        assert box is not None and box["x"] + box["width"] > width / 2  # starts on the right
        assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        shot(page, "urdu-eligibility")
        # Switching language is one control; Spanish is left to right again.
        page.select_option(tid("language"), "es")
        page.wait_for_selector("html[dir='ltr'][lang='es']")
        assert page.inner_text(tid("step-heading")) == "Primero, unas preguntas"
        assert problems == []


def test_folder_drop_and_remove(
    sqlite_hub: HubProcess, browser: Browser, tmp_path: Path, conformance_vectors: Path
) -> None:
    """A folder keeps only its photos and videos (hidden and other files left out), files
    dropped on the page are added, and removing one moves focus to the next one's button."""
    images = conformance_vectors / "pdq" / "images"
    folder = tmp_path / "holiday"
    folder.mkdir()
    (folder / "one.jpg").write_bytes((images / "bridge-mods" / "aaa-orig.jpg").read_bytes())
    (folder / "two.jpg").write_bytes((images / "misc-images" / "wee.jpg").read_bytes())
    (folder / ".hidden.jpg").write_bytes(b"\xff\xd8\xff")
    (folder / "notes.txt").write_text("not a picture")
    with opened(browser, sqlite_hub) as (page, problems):
        page.click(tid("start-new"))
        for name in ("elig-age-yes", "elig-in-yes", "elig-situation-shared", "elig-continue"):
            page.click(tid(name))
        page.check(tid("code-kept"))
        page.click(tid("code-continue"))
        page.set_input_files(tid("folder-input"), str(folder))
        page.wait_for_selector(f"{tid('files-continue')}:not([disabled])")
        names = page.eval_on_selector_all(
            f"{tid('file-item')} bdi", "els => els.map(e => e.textContent)"
        )
        assert sorted(names) == ["one.jpg", "two.jpg"]
        dropped = list((images / "bridge-mods" / "square-128x128.jpg").read_bytes())
        page.evaluate(
            """(bytes) => {
                const dt = new DataTransfer();
                dt.items.add(new File([new Uint8Array(bytes)], "dropped.jpg",
                                      { type: "image/jpeg" }));
                const zone = document.querySelector("[data-testid='drop-zone']");
                zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt,
                                                                cancelable: true }));
                zone.dispatchEvent(new DragEvent("drop", { dataTransfer: dt,
                                                            cancelable: true }));
            }""",
            dropped,
        )
        page.wait_for_selector(f"{tid('file-item')}:nth-child(3)[data-state='ready']")
        page.click(f"{tid('file-item')}:first-child {tid('file-remove')}")
        assert page.locator(tid("file-item")).count() == 2
        assert focused_testid(page) == "file-remove"
        shot(page, "folder-drop")
        assert problems == []
