"""The person's page in Debian's Chromium against a real hub (issue 15, "Tests and figures").

A hub runs as ``ncii-hub serve`` under uvicorn (tests/hub/hubkit.py's HubProcess) on SQLite or
a fresh PostgreSQL database and serves web/ at ``/``. A ``PersonPage`` is a Chromium context on
it that RECORDS every request (its own pages and their Workers: route interception sees URL,
headers and body before anything leaves) and refuses any other origin. ``Traffic.assert_clean``
then checks that no request went elsewhere and that no URL, header or body carries the test
pictures' bytes or their file names.

The pictures are made here: real photos (scikit-image, grain) saved as JPEG and PNG with a
distinctive byte run (``MARKER``, in a JPEG comment or a PNG text chunk) that appears nowhere
else, and distinctive file names; the marker is also searched for in base64 and hex, so
sending the file in any of the usual encodings is caught.

axe-core (tests/web/axe/, vendored) is added by ``page.add_init_script``: Playwright installs
it through the DevTools protocol, before the page's own scripts, and the hub's
Content-Security-Policy (no inline script) does not apply to it, so the page runs under its
real policy while axe checks it. Screenshots go to tests/artifacts/ (gitignored).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import io
import json
import os
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import skimage.data
from PIL import Image, PngImagePlugin
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Request, Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

from hubkit import ENVELOPE_TYPE, Case, HubProcess
from webkit import CHROMIUM, CHROMIUM_ARGS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
AXE_JS = Path(__file__).resolve().parent / "axe" / "axe.min.js"
# axe-core 4.14.1's axe.min.js as published in its sri-history.json (tests/web/axe/README.md).
AXE_SHA256 = "KTSJmUUM3yhJqOcLeRL8LahahJ2jnA0NU5T1HUqe2Vw="

# A byte run no real picture, page file or hub answer contains: found in a request, it means
# the picture's bytes left the browser.
MARKER = b"NCIIqz7MARKERx93kfBYTESzq0vq4RUN"
# File names as distinctive; the stem is what must never be seen in a request.
PHOTO_NAMES = ("qzholiday-beach-4471.jpg", "qzbirthday-garden-8812.png", "qzkitchen-dance-2290.jpg")

HUB_FAST = ("--set", "batch_interval=0.05", "--set", "lock_retry_seconds=0.2")
# The page solves the case puzzle as a person's browser would; difficulty kept low so a test
# spends well under a second on it.
HUB_PUZZLE = ("--set", "puzzle=true", "--set", "puzzle_difficulty=2")


# -- pictures -------------------------------------------------------------------------------

_SOURCES = ("chelsea", "coffee", "astronaut", "rocket", "immunohistochemistry")


@functools.cache
def photo(seed: int, size: tuple[int, int] = (800, 600), fmt: str = "JPEG") -> bytes:
    """A real photo (scikit-image, resized, grain) with ``MARKER`` inside its bytes; made once
    per process (the same arguments always give the same bytes)."""
    source = getattr(skimage.data, _SOURCES[seed % len(_SOURCES)])()[:, :, :3]
    base = Image.fromarray(source).resize(size, Image.Resampling.BILINEAR)
    rng = np.random.default_rng(seed)
    pixels = np.asarray(base).astype(np.int16) + rng.normal(0, 5, (size[1], size[0], 3)).astype(
        np.int16
    )
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=90, comment=MARKER)
    else:
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", MARKER.decode())
        image.save(out, "PNG", pnginfo=info)
    data = out.getvalue()
    assert MARKER in data
    return data


def write_photos(folder: Path, names: Sequence[str] = PHOTO_NAMES) -> list[Path]:
    """The test photos under their distinctive names (format from the extension)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed, name in enumerate(names):
        path = folder / name
        path.write_bytes(photo(seed, fmt="PNG" if name.endswith(".png") else "JPEG"))
        paths.append(path)
    return paths


def write_bad_files(folder: Path) -> dict[str, Path]:
    """Files a person might pick that cannot give a picture fingerprint, by what is wrong."""
    folder.mkdir(parents=True, exist_ok=True)
    good = photo(7)
    heic = (
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
        + b"\x00\x00\x00\x10meta"
        + MARKER
        + secrets.token_bytes(2000)
    )
    files = {
        "truncated": ("qztorn-photo-3391.jpg", good[: len(good) // 3]),
        "text": ("qzshopping-list-5520.jpg", b"milk, eggs, bread\n" * 40 + MARKER),
        "heic": ("qziphone-shot-6604.heic", heic),
        "empty": ("qzempty-file-7713.jpg", b""),
    }
    out = {}
    for what, (name, data) in files.items():
        (folder / name).write_bytes(data)
        out[what] = folder / name
    return out


def marker_forms(marker: bytes = MARKER) -> list[bytes]:
    """The marker as it would appear in a request: raw, hex, base64 and base64url at each of
    the three alignments (edge characters that depend on neighbours dropped)."""
    forms = [marker, marker.hex().encode(), marker.hex().upper().encode()]
    for shift in range(3):
        padded = b"\x00" * shift + marker
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(padded)
            forms.append(text[4 if shift else 0 : -4])
    return forms


# -- the hub --------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database (SQLAlchemy URL) for a module's hub, dropped afterwards."""
    import psycopg

    name = "ncii_person_" + secrets.token_hex(6)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running_hub(folder: Path, database_url: str, *extra: str) -> Iterator[HubProcess]:
    """``ncii-hub serve`` with fast batching and the case puzzle on; SIGKILLed at the end."""
    hub = HubProcess(folder / "data", database_url, (*HUB_FAST, *HUB_PUZZLE, *extra)).start()
    try:
        yield hub
    finally:
        hub.kill()


@contextlib.contextmanager
def hub_on(database: str, folder: Path, request: Any) -> Iterator[tuple[HubProcess, str]]:
    """A hub on ``database`` ("sqlite" or "postgresql": a fresh database from the session's
    ``postgres_admin_url`` fixture, through ``request``); yields it and its database URL."""
    with contextlib.ExitStack() as stack:
        if database == "sqlite":
            url = f"sqlite:///{folder / 'hub.sqlite3'}"
        else:
            admin = request.getfixturevalue("postgres_admin_url")
            url = stack.enter_context(postgres_database(admin))
        yield stack.enter_context(running_hub(folder, url)), url


def hub_counts(database_url: str, case_id: str) -> dict[str, int]:
    """What the hub's database holds for ``case_id``: cases with that id (0 or 1), and its
    entries (additions and withdrawals): the tests' ground truth, not the hub's answers."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            cases = conn.execute(
                text("SELECT count(*) FROM cases WHERE case_id = :c"), {"c": case_id}
            ).scalar_one()
            entries = conn.execute(
                text("SELECT count(*) FROM entries WHERE case_id = :c"), {"c": case_id}
            ).scalar_one()
    finally:
        engine.dispose()
    return {"cases": int(cases), "entries": int(entries)}


def case_over_http(hub: HubProcess, hashes: Sequence[dict[str, Any]]) -> Case:
    """A case the hub knows, made as the Python client makes one (the puzzle solved)."""
    import httpx

    from crypto import puzzle

    case = Case()
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        answer = client.get("/v1/case-puzzle").json()
        challenge = puzzle.parse_challenge(bytes.fromhex(answer["challenge"]))
        solution = puzzle.encode_solution(
            challenge, puzzle.solve(challenge, case.secret.public_key())
        )
        response = client.post(
            "/v1/submissions",
            content=case.submission(list(hashes)),
            headers={"Content-Type": ENVELOPE_TYPE, puzzle.HEADER_NAME: solution},
        )
        assert response.status_code in (200, 201, 202), response.text
    return case


def hub_status(hub: HubProcess, recovery_code: str) -> dict[str, Any]:
    """The hub's status answer for the case of ``recovery_code`` (a signed status query, as
    any client sends it)."""
    import httpx

    from crypto.case import CaseSecret

    case = Case(CaseSecret.from_recovery_code(recovery_code))
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        response = client.post(
            "/v1/status", content=case.status_query(), headers={"Content-Type": ENVELOPE_TYPE}
        )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def run_client(
    home: Path | None, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real ``ncii-client`` CLI in a subprocess, with its own home folder (``--home``,
    given last; None for ``hash``, which keeps nothing)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "client.cli", *args, *(("--home", str(home)) if home else ())],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=120,
    )


# -- what the page sends --------------------------------------------------------------------


@dataclass
class Seen:
    """One request as the browser was about to send it."""

    url: str
    method: str
    headers: dict[str, str]
    body: bytes
    resource_type: str
    aborted: bool = False


@dataclass
class Traffic:
    """Every request of one browser context, in order."""

    origin: str
    seen: list[Seen] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # URLs from context.on("request")
    websockets: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self) -> int:
        """A position, for "nothing was sent after this"."""
        return len(self.seen)

    def since(self, mark: int) -> list[Seen]:
        return self.seen[mark:]

    def posts(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST" and _path_of(s.url) == path]

    def assert_clean(
        self,
        names: Sequence[str] = (),
        markers: Sequence[bytes] = (),
        recovery_code: str | None = None,
    ) -> None:
        """No request to another origin, and no URL, header or body holding picture bytes
        (any form of ``MARKER``), a file's name (its stem, in any case, raw or %-encoded) or
        the recovery code (with or without its dashes)."""
        assert not self.websockets, self.websockets
        others = [s.url for s in self.seen if not _same_origin(s.url, self.origin)]
        others += [u for u in self.events if not _same_origin(u, self.origin)]
        assert not others, f"requests to another origin: {others}"
        # Every request the context reported went through the recording route too.
        recorded = {s.url for s in self.seen}
        assert not [u for u in self.events if u not in recorded and not u.startswith("blob:")]
        forms = [f.lower() for m in (markers or [MARKER]) for f in marker_forms(m)]
        stems = [Path(n).stem.lower() for n in names]
        stems += [quote(s).lower() for s in stems]
        if recovery_code:
            stems += [recovery_code.lower(), recovery_code.replace("-", "").lower()]
        for s in self.seen:
            blob = b"\n".join(
                [s.url.encode(), *(f"{k}: {v}".encode() for k, v in s.headers.items()), s.body]
            ).lower()
            for form in forms:
                assert form not in blob, f"picture bytes in {s.method} {s.url}"
            for stem in stems:
                assert stem.encode() not in blob, f"a name or secret in {s.method} {s.url}"


def _hook(hold: dict[str, Any], path: str, method: str) -> Any:
    """A test's hook for this request: ``hold[path]`` for a POST to exactly that path, or
    ``hold["GET " + prefix]`` for a GET whose path starts with the prefix."""
    if method == "POST":
        return hold.get(path)
    for key, hook in hold.items():
        if key.startswith("GET ") and path.startswith(key[4:]):
            return hook
    return None


def _same_origin(url: str, origin: str) -> bool:
    return url == origin or url.startswith(origin + "/") or url.startswith(("data:", "blob:"))


def _path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1].split("?", 1)[0] if "://" in url else url


# -- the browser ----------------------------------------------------------------------------


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium (never a downloaded browser); every name but 127.0.0.1 unresolvable,
    so a request to another origin could not leave the machine even if it were not refused."""
    from playwright.sync_api import sync_playwright

    args = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PersonPage:
    """One person's browser (a fresh context: no storage shared with other tests)."""

    context: BrowserContext
    page: Page
    base: str
    traffic: Traffic
    name: str
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    shots: list[Path] = field(default_factory=list)
    axe_results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    check_axe: bool = False
    # tests' hooks, callable(route): "/path" for a POST there, "GET /prefix" for GETs under it
    hold: dict[str, Any] = field(default_factory=dict)

    def tid(self, testid: str) -> Locator:
        return self.page.get_by_test_id(testid)

    def open(self, path: str = "/") -> None:
        self.page.goto(self.base + path)

    def shot(self, step: str) -> Path:
        """A full-page screenshot in tests/artifacts/person-<test>-<nn>-<step>.png."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"person-{self.name}-{len(self.shots):02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    def axe(self, step: str) -> list[dict[str, Any]]:
        """Run axe-core on the page as it is now; returns every violation, whatever its impact
        (the issue asks for no serious or critical one; the page has none at all, so a
        moderate or minor one appearing is a regression too). Kept under ``axe_results``."""
        result: dict[str, Any] = self.page.evaluate(
            """async () => {
                if (!window.axe) throw new Error("axe-core was not injected");
                const r = await window.axe.run(document, {resultTypes: ["violations"]});
                return {violations: r.violations.map((v) => ({id: v.id, impact: v.impact,
                    help: v.help, nodes: v.nodes.map((n) => n.target.join(" ") + ": " +
                    (n.failureSummary || "")).slice(0, 5)}))};
            }"""
        )
        violations: list[dict[str, Any]] = result["violations"]
        self.axe_results[step] = violations
        return violations

    def assert_accessible(self, step: str) -> None:
        bad = self.axe(step)
        assert not bad, f"axe at {step}: {json.dumps(bad, indent=1)}"

    def step(self, name: str) -> None:
        """A step of the flow reached: screenshot, and the axe check when axe is injected."""
        self.shot(name)
        if self.check_axe:
            self.assert_accessible(name)

    def screen(self) -> str:
        """The screen shown (app.js sets body[data-screen])."""
        return str(self.page.evaluate("document.body.dataset.screen || ''"))

    def wait_screen(self, name: str, timeout: float = 30_000) -> None:
        self.page.wait_for_selector(f"body[data-screen='{name}']", timeout=timeout)

    def page_errors(self) -> list[str]:
        """Uncaught errors and console errors (a refused request to a stopped hub aside)."""
        noisy = re.compile(
            r"Failed to load resource|ERR_CONNECTION_REFUSED|ERR_INTERNET_DISCONNECTED"
        )
        return self.errors + [
            m for m in self.console if m.startswith("error") and not noisy.search(m)
        ]


@contextlib.contextmanager
def person(
    browser: Browser,
    base: str,
    name: str,
    *,
    locale: str = "en-GB",
    axe: bool = False,
    viewport: tuple[int, int] = (1100, 900),
) -> Iterator[PersonPage]:
    """A fresh context on the hub at ``base`` recording all its traffic; ``axe`` injects
    axe-core (init script, the page's policy untouched)."""
    context = browser.new_context(
        locale=locale,
        viewport={"width": viewport[0], "height": viewport[1]},
        accept_downloads=True,
    )
    context.set_default_timeout(30_000)
    traffic = Traffic(base)
    holder: list[PersonPage] = []

    def route(r: Route) -> None:
        req = r.request
        seen = Seen(
            req.url, req.method, dict(req.headers), req.post_data_buffer or b"", req.resource_type
        )
        with traffic.lock:
            traffic.seen.append(seen)
        if not _same_origin(req.url, base):
            seen.aborted = True
            r.abort()
            return
        hook = _hook(holder[0].hold, _path_of(req.url), req.method) if holder else None
        if hook is not None:
            hook(r)
        else:
            r.continue_()

    def on_request(req: Request) -> None:
        with traffic.lock:
            traffic.events.append(req.url)

    context.route("**/*", route)
    context.on("request", on_request)
    if axe:
        source = AXE_JS.read_bytes()
        digest = base64.b64encode(hashlib.sha256(source).digest()).decode()
        assert digest == AXE_SHA256, "tests/web/axe/axe.min.js is not the pinned axe-core"
        context.add_init_script(source.decode())
    page = context.new_page()
    pp = PersonPage(context, page, base, traffic, name, check_axe=axe)
    holder.append(pp)
    page.on("console", lambda m: pp.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: pp.errors.append(str(e)))
    page.on("websocket", lambda ws: traffic.websockets.append(ws.url))
    try:
        yield pp
    finally:
        context.close()
        if pp.axe_results:  # every violation, serious or not, for people to read
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / f"person-{name}-axe.json").write_text(
                json.dumps(pp.axe_results, indent=1), encoding="utf-8"
            )


# -- the flow, as a person clicks it (data-testids: web/README.md) ------------------------------

UNSETTLED = ("waiting", "working")


def open_page(pp: PersonPage) -> None:
    pp.open("/")
    pp.page.wait_for_selector("body[data-ready='1']")


def start_case(pp: PersonPage, *, situation: str = "shared") -> tuple[str, str]:
    """From the start screen to the file picker: eligibility answered, the case made, the
    recovery code read off the screen and "I have kept it" ticked. Returns (case id, code)."""
    open_page(pp)
    pp.step("start")
    pp.tid("start-new").click()
    pp.wait_screen("eligibility")
    pp.tid("elig-age-yes").check()
    pp.tid("elig-in-yes").check()
    pp.tid(f"elig-situation-{situation}").check()
    pp.step("eligibility")
    pp.tid("elig-continue").click()
    if situation == "threatened":
        pp.wait_screen("threat")
        pp.step("threat")
        pp.tid("threat-continue").click()
    pp.tid("recovery-code").wait_for()
    case_id = pp.tid("case-id").inner_text().strip()
    code = pp.tid("recovery-code").inner_text().strip()
    pp.step("recovery-code")
    pp.tid("code-kept").check()
    pp.tid("code-continue").click()
    pp.wait_screen("files")
    pp.tid("pick-files").wait_for()
    pp.step("files-empty")
    return case_id, code


def file_states(pp: PersonPage) -> list[str]:
    states: list[str] = pp.page.eval_on_selector_all(
        "[data-testid='file-item']", "els => els.map((e) => e.dataset.state)"
    )
    return states


def pick(pp: PersonPage, paths: Sequence[Path], *, settle: bool = True) -> dict[str, str]:
    """Choose files in the picker; waits until every file is read. Returns name -> state."""
    before = len(file_states(pp))
    pp.tid("file-input").set_input_files([str(p) for p in paths])
    if settle:
        pp.page.wait_for_function(
            """([n, unsettled]) => {
                const items = [...document.querySelectorAll("[data-testid='file-item']")];
                return items.length >= n
                    && items.every((e) => !unsettled.includes(e.dataset.state));
            }""",
            arg=[before + len(paths), list(UNSETTLED)],
            timeout=60_000,
        )
    return file_table(pp)


def file_table(pp: PersonPage) -> dict[str, str]:
    """File name -> state ("ready", "error", ...) as the file list shows them."""
    return {name: row["state"] for name, row in file_rows(pp).items()}


def file_rows(pp: PersonPage) -> dict[str, dict[str, str]]:
    """File name -> {state, status, why, todo}: what the person reads for each file."""
    rows: list[dict[str, str]] = pp.page.eval_on_selector_all(
        "[data-testid='file-item']",
        """els => els.map((e) => ({
            name: e.querySelector('.file-name bdi').textContent, state: e.dataset.state,
            status: e.querySelector("[data-testid='file-status']").textContent,
            why: e.querySelector('.why')?.textContent ?? '',
            todo: e.querySelector('.todo')?.textContent ?? ''}))""",
    )
    return {row["name"]: row for row in rows}


def catalogue(language: str = "en") -> dict[str, Any]:
    """web/locales/<language>.json: the texts the person should read."""
    data: dict[str, Any] = json.loads(
        (PROJECT_ROOT / "web" / "locales" / f"{language}.json").read_text(encoding="utf-8")
    )
    return data


def confirm(pp: PersonPage) -> int:
    """Files screen -> confirmation; returns the number of fingerprints it says it will send."""
    pp.tid("files-continue").click()
    pp.wait_screen("confirm")
    pp.step("confirm")
    return int(pp.tid("confirm-summary").get_attribute("data-hashes") or "0")


def send(pp: PersonPage) -> None:
    """Confirmation -> send -> the case screen."""
    pp.tid("send").click()
    pp.wait_screen("case", timeout=60_000)


def case_states(pp: PersonPage) -> list[str]:
    states: list[str] = pp.page.eval_on_selector_all(
        "[data-testid='case-file']", "els => els.map((e) => e.dataset.state)"
    )
    return states


def wait_case_states(pp: PersonPage, wanted: str, count: int, timeout: float = 60_000) -> None:
    """Until ``count`` rows of the case screen all show ``wanted`` (the page polls the hub)."""
    pp.page.wait_for_function(
        """([wanted, n]) => {
            const rows = [...document.querySelectorAll("[data-testid='case-file']")];
            return rows.length === n && rows.every((e) => e.dataset.state === wanted);
        }""",
        arg=[wanted, count],
        timeout=timeout,
    )


def open_case(pp: PersonPage, case_id: str, code: str) -> None:
    """Start screen -> "I already have a case" -> case number and recovery code -> open."""
    open_page(pp)
    pp.tid("start-return").click()
    pp.wait_screen("return")
    pp.tid("return-case-id").fill(case_id)
    pp.tid("return-code").fill(code)
    pp.tid("return-open").click()


# -- the keyboard ---------------------------------------------------------------------------


def tab_to(pp: PersonPage, testid: str, *, limit: int = 60) -> None:
    """Press Tab until the control ``testid`` has focus (and check that focus is visible
    there: an outline or a box shadow drawn by :focus-visible)."""
    for _ in range(limit):
        pp.page.keyboard.press("Tab")
        focused = pp.page.evaluate("document.activeElement?.dataset?.testid ?? ''")
        if focused == testid:
            assert focus_visible(pp), f"no visible focus on {testid}"
            return
    raise AssertionError(f"Tab never reached {testid}")


def focus_visible(pp: PersonPage) -> bool:
    visible: bool = pp.page.evaluate(
        """() => {
            const el = document.activeElement;
            if (!el || !el.matches(':focus-visible')) return false;
            const style = getComputedStyle(el);
            const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
            return outline || (style.boxShadow && style.boxShadow !== 'none');
        }"""
    )
    return visible
