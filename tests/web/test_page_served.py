"""The page as the hub serves it, in Debian's Chromium: the strict policy, the import map's
integrity and the content-addressed URLs let it load and fingerprint a file, with no policy
violation and no request to anything but the hub (issue 15, "the hub serves the page")."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import TimeoutError as PlaywrightTimeout

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

from hubkit import HubProcess
from webkit import chromium

IMAGE = ("pdq", "images", "bridge-mods", "aaa-orig.jpg")
HASH = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    tmp = tmp_path_factory.mktemp("webhub")
    proc = HubProcess(tmp / "data", f"sqlite:///{tmp / 'hub.sqlite3'}").start()
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module; each test loads the page in a fresh context."""
    with chromium() as b:
        yield b


def _open(
    browser: Browser, hub: HubProcess, conformance_vectors: Path, tamper: bool = False
) -> dict[str, Any]:
    """Load / in Chromium (a fresh context), choose the image, and return what happened."""
    console: list[str] = []
    errors: list[str] = []
    requests: list[str] = []
    failed: list[str] = []
    page = browser.new_page()
    page.set_default_timeout(60_000)
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(r.url))

    def route(r: Any) -> None:
        requests.append(r.request.url)
        if not r.request.url.startswith(hub.url):
            r.abort()
        elif tamper and r.request.url.endswith("/pdq.js"):
            response = r.fetch()
            r.fulfill(response=response, body=response.body() + b"\n// changed\n")
        else:
            r.continue_()

    page.route("**/*", route)
    # Every policy violation, as the page itself sees them (console messages aside); and the
    # scripts that failed to load (a module whose static imports failed fires "error" on its
    # <script> element and never runs).
    page.add_init_script(
        "window.__csp = []; window.__failed = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
        "window.addEventListener('error', (e) => { if (e.target instanceof HTMLScriptElement)"
        " window.__failed.push(e.target.src); }, true);"
    )
    page.goto(hub.url + "/")
    # The page's own modules, as the served index loads them (import map integrity and
    # all): fingerprint the image with the fingerprint.js next to app.js.
    data = list(conformance_vectors.joinpath(*IMAGE).read_bytes())
    done = True
    try:
        # Ready, or never: app.js failed to load (a static import refused) and will not run.
        page.wait_for_function(
            "() => document.body?.dataset.ready === '1'"
            " || window.__failed.some((src) => src.endsWith('/app.js'))"
        )
        if page.evaluate("document.body.dataset.ready") != "1":
            raise RuntimeError("never ready: a static import failed")
        out = page.evaluate(
            """async (bytes) => {
                const app = document.querySelector('script[src$="/app.js"]').src;
                const m = await import(new URL("./fingerprint.js", app));
                const file = new File([new Uint8Array(bytes)], "a.jpg");
                const r = await m.fingerprint(file);
                return r.records.map((x) => JSON.stringify(x)).join("\\n");
            }""",
            data,
        )
    except Exception:
        done = False
        out = ""
    violations = page.evaluate("window.__csp")
    console_before_control = list(console)
    # Positive control: an inline script added now is blocked and reported.
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.__ran = 1'; document.body.append(s); }"
    )
    with contextlib.suppress(PlaywrightTimeout):  # (then the control below says so)
        page.wait_for_function(f"() => window.__csp.length > {len(violations)}", timeout=5_000)
    control = page.evaluate("[window.__csp.length, window.__ran === 1]")
    page.close()
    return {
        "console": console_before_control,
        "errors": errors,
        "requests": requests,
        "failed": failed,
        "out": out,
        "done": done,
        "violations": violations,
        "control": control,
    }


def test_served_page_fingerprints_with_no_policy_violation(
    hub: HubProcess, browser: Browser, conformance_vectors: Path
) -> None:
    seen = _open(browser, hub, conformance_vectors)
    assert seen["done"], seen
    records = [json.loads(line) for line in seen["out"].strip().splitlines()]
    assert {r["algorithm"] for r in records} == {"md5", "sha256", "pdq"}
    assert records[-1]["hash"] == HASH
    bad = [m for m in seen["console"] if m.startswith("error") or "Security Policy" in m]
    assert bad == [] and seen["errors"] == [] and seen["failed"] == []
    assert seen["violations"] == []
    assert seen["control"] == [1, False]  # the listener works, and inline script is blocked
    # Everything from the hub, every file under its content-addressed URL (the Worker and
    # the vendored modules included).
    assert all(u.startswith(hub.url) for u in seen["requests"])
    paths = {u[len(hub.url) :] for u in seen["requests"]}
    assert "/" in paths
    assert any(p.endswith("/fingerprint-worker.js") for p in paths)
    assert any(p.endswith("/vendor/@noble/hashes/sha2.js") for p in paths)
    assert all(p == "/" or p.startswith("/s/") for p in paths), paths


def test_a_module_changed_in_transit_is_refused_by_the_browser(
    hub: HubProcess, browser: Browser, conformance_vectors: Path
) -> None:
    """pdq.js is a static import: no tag can carry its integrity, the import map does."""
    seen = _open(browser, hub, conformance_vectors, tamper=True)
    assert not seen["done"]
    text = " ".join(seen["console"] + seen["errors"])
    assert "integrity" in text.lower(), seen


def test_a_catalogue_changed_in_transit_is_refused_and_the_page_falls_back_to_english(
    hub: HubProcess, browser: Browser
) -> None:
    """locales/*.json are fetched with the integrity the import map gives them: a Spanish
    catalogue changed on the way (words a hub could use to mislead a person) is refused, and
    the page still works, in English."""
    console: list[str] = []
    page = browser.new_page(locale="es-ES")
    page.on("console", lambda m: console.append(m.text))

    def route(r: Any) -> None:
        if r.request.url.endswith("/locales/es.json"):
            response = r.fetch()
            changed = response.body().replace(b'"', b'"', 1) + b" "
            r.fulfill(response=response, body=changed)
        else:
            r.continue_()

    page.route("**/*", route)
    page.goto(hub.url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    assert page.evaluate("document.documentElement.lang") == "en"
    assert "integrity" in " ".join(console).lower(), console
    # Untouched, the same browser gets Spanish.
    page.unroute("**/*")
    page.goto(hub.url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    assert page.evaluate("document.documentElement.lang") == "es"
    page.close()
