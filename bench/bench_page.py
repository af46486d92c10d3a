"""The person's page as a person meets it (issue 15): page weight, time until files can be
picked, and photos fingerprinted per second, in Debian's Chromium against a real hub on
loopback (``ncii-hub serve``, SQLite, the case puzzle off: it is timed by bench_puzzle.py).

- **Page weight**: bytes over the wire for a first visit (a fresh browser profile, nothing
  cached), from each response's transfer sizes (headers + body, as Chromium reports them):
  what had arrived when the first screen was drawn, then everything until the file picker
  shows (eligibility answered and the case made: the modules loaded on the way). The hub does
  not compress, so the baseline column is the same files gzip-compressed (level 6), what
  compression would give.
- **Time until a person can pick files**: navigation start to the first screen drawn
  (``body[data-ready]``) and to the "choose photos" button on screen, the eligibility and case
  screens clicked through by the test as soon as each shows (a person reads them; this is the
  page's own share), and navigation start to first paint. Baseline: first paint of a one-line
  HTML page from a stdlib server on the same loopback.
- **Photos per second**: N photos (1 MP and 12 MP JPEG q90, scikit-image with grain) chosen
  at once in the page's picker, until every file is "ready" (MD5, SHA-256, decode and PDQ in
  the page's Worker, one at a time). Baseline: ``hashing.image.hash_image`` (Python PDQ,
  its default fast path) on the same photos, one after another. A second figure runs the
  page's own ``fingerprint()`` alone on the same files in the same page (no file list,
  thumbnails or messages), to show the share of the page around the fingerprints.

Run: .venv/bin/python bench/bench_page.py [--smoke | --quick | --full] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _report import Rows, add_mode_flags, mode_of
from bench_pdq import make_photo

from hashing.image import hash_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "web"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "hub"))

from hubkit import HubProcess
from playwright.sync_api import Browser, Page, sync_playwright
from webkit import CHROMIUM, CHROMIUM_ARGS

PHOTOS = {
    "smoke": {"1 MP (1152x864)": ((1152, 864), 2)},
    "quick": {"1 MP (1152x864)": ((1152, 864), 20), "12 MP (4000x3000)": ((4000, 3000), 4)},
    "full": {"1 MP (1152x864)": ((1152, 864), 50), "12 MP (4000x3000)": ((4000, 3000), 10)},
}
ROUNDS = {"smoke": 1, "quick": 3, "full": 5}

# Set before the page's scripts run: when the file picker's button first shows.
_WATCH = """
window.__pickAt = null;
window.__readyAt = null;
new MutationObserver((_, observer) => {
  if (window.__readyAt === null && document.body?.dataset.ready === "1") {
    window.__readyAt = performance.now();
  }
  const button = document.querySelector("[data-testid='pick-files']");
  if (button && !button.disabled && button.offsetParent !== null) {
    window.__pickAt = performance.now();
    observer.disconnect();
  }
}).observe(document, {subtree: true, childList: true, attributes: true});
"""


class _OneLine(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>x</title><p>One line of text.</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.contextmanager
def one_line_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OneLine)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def first_paint(page: Page) -> float:
    found: float = page.evaluate(
        """() => new Promise((resolve) => {
            const get = () => performance.getEntriesByType("paint")
                .find((e) => e.name === "first-paint");
            const seen = get();
            if (seen) return resolve(seen.startTime);
            new PerformanceObserver((list, obs) => { obs.disconnect(); resolve(get().startTime); })
                .observe({type: "paint"});
        })"""
    )
    return found


def to_file_picker(page: Page) -> None:
    """Eligibility and the case's screens, clicked as soon as each shows."""
    page.get_by_test_id("start-new").click()
    page.get_by_test_id("elig-age-yes").check()
    page.get_by_test_id("elig-in-yes").check()
    page.get_by_test_id("elig-situation-shared").check()
    page.get_by_test_id("elig-continue").click()
    page.get_by_test_id("code-kept").check()
    page.get_by_test_id("code-continue").click()
    page.get_by_test_id("pick-files").wait_for()


def first_visit(browser: Browser, base: str) -> dict[str, float]:
    """One first visit in a fresh profile: bytes and times."""
    context = browser.new_context()
    context.add_init_script(_WATCH)
    page = context.new_page()
    page.set_default_timeout(60_000)
    done: list[Any] = []
    context.on("requestfinished", lambda request: done.append(request))
    page.goto(base + "/")
    page.wait_for_selector("body[data-ready='1']")
    first_screen = list(done)
    ready_at = float(page.evaluate("window.__readyAt"))
    page.wait_for_load_state("networkidle")
    paint = first_paint(page)
    to_file_picker(page)
    page.wait_for_function("window.__pickAt !== null")
    pick_at = float(page.evaluate("window.__pickAt"))
    page.wait_for_load_state("networkidle")

    def wire(requests: list[Any]) -> tuple[int, int]:
        sent = packed = 0
        for request in requests:
            sizes = request.sizes()
            sent += sizes["responseHeadersSize"] + sizes["responseBodySize"]
            response = request.response()
            body = response.body() if response is not None else b""
            packed += sizes["responseHeadersSize"] + len(gzip.compress(body, 6))
        return sent, packed

    first, first_gz = wire(first_screen)
    total, total_gz = wire(done)
    encodings = {(r.response().headers.get("content-encoding") or "") for r in done if r.response()}
    context.close()
    return {
        "first KB": first / 1024,
        "first gz KB": first_gz / 1024,
        "total KB": total / 1024,
        "total gz KB": total_gz / 1024,
        "requests": float(len(done)),
        "compressed": float(any(encodings)),
        "paint ms": paint,
        "ready ms": ready_at,
        "pick ms": pick_at,
    }


def baseline_paint(browser: Browser, url: str) -> float:
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    paint = first_paint(page)
    context.close()
    return paint


def photos_per_second(browser: Browser, base: str, paths: list[Path]) -> tuple[float, float]:
    """Photos per second through the page's picker (until every file shows "ready"), then
    through the page's own ``fingerprint()`` alone on the same files (no list, thumbnails or
    messages): the share of the page around the fingerprints."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(300_000)
    page.goto(base + "/")
    to_file_picker(page)
    picker = page.get_by_test_id("file-input")
    start = time.perf_counter()
    picker.set_input_files([str(p) for p in paths])
    page.wait_for_function(
        """(n) => {
            const items = [...document.querySelectorAll("[data-testid='file-item']")];
            return items.length === n && items.every((e) => e.dataset.state === "ready");
        }""",
        arg=len(paths),
        polling=20,
    )
    through_page = len(paths) / (time.perf_counter() - start)
    # The same files again, kept from the page (its change handler not run), to fingerprint().
    picker.evaluate(
        """(el) => el.addEventListener("change", (event) => {
            window.__files = [...el.files];
            event.stopImmediatePropagation();
        }, {capture: true, once: true})"""
    )
    picker.set_input_files([str(p) for p in paths])
    page.wait_for_function("() => Array.isArray(window.__files)")
    ms: float = page.evaluate(
        """async () => {
            const url = performance.getEntriesByType("resource").map((e) => e.name)
                .find((name) => name.endsWith("/fingerprint.js"));
            const { fingerprint } = await import(url);
            const t = performance.now();
            for (const file of window.__files) await fingerprint(file);
            return performance.now() - t;
        }"""
    )
    context.close()
    return through_page, len(paths) / (ms / 1000)


def python_per_second(datas: list[bytes]) -> float:
    start = time.perf_counter()
    for data in datas:
        hash_image(data)
    return len(datas) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_mode_flags(
        parser,
        smoke="1 visit, 2 photos of 1 MP",
        quick="3 visits, 20 photos of 1 MP and 4 of 12 MP",
        full="5 visits, 50 photos of 1 MP and 10 of 12 MP",
    )
    args = parser.parse_args()
    mode = mode_of(args)
    rows = Rows()
    with tempfile.TemporaryDirectory() as tmp, one_line_server() as plain:
        folder = Path(tmp)
        hub = HubProcess(folder / "data", f"sqlite:///{folder / 'hub.sqlite3'}").start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                if mode != "smoke":  # warm the hub and the browser's own caches
                    first_visit(browser, hub.url)
                visits = [first_visit(browser, hub.url) for _ in range(ROUNDS[mode])]
                plain_paint = statistics.median(
                    baseline_paint(browser, plain) for _ in range(ROUNDS[mode])
                )
                rates = []
                for i, (label, ((width, height), count)) in enumerate(PHOTOS[mode].items()):
                    datas = [make_photo(width, height, seed=100 * i + n) for n in range(count)]
                    paths = []
                    for n, data in enumerate(datas):
                        path = folder / f"photo-{i}-{n}.jpg"
                        path.write_bytes(data)
                        paths.append(path)
                    page_rate, alone_rate = photos_per_second(browser, hub.url, paths)
                    python_rate = python_per_second(datas)
                    rates.append((label, count, page_rate, alone_rate, python_rate))
                browser.close()
        finally:
            hub.kill()

    v = visits[-1]
    median = {
        k: statistics.median(x[k] for x in visits) for k in ("paint ms", "ready ms", "pick ms")
    }
    compressed = "yes" if v["compressed"] else "no"
    print(f"first visit ({ROUNDS[mode]} fresh profiles; the hub compresses: {compressed})")
    print(f"{'what':<44} {'value':>10} {'baseline':>10}  baseline is")
    print(
        f"{'first screen, KB over the wire':<44} {v['first KB']:>10.1f} "
        f"{v['first gz KB']:>10.1f}  same files gzip -6"
    )
    print(
        f"{'until files can be picked, KB over the wire':<44} {v['total KB']:>10.1f} "
        f"{v['total gz KB']:>10.1f}  same files gzip -6 ({v['requests']:.0f} requests)"
    )
    print(
        f"{'navigation to first paint, ms':<44} {median['paint ms']:>10.0f} "
        f"{plain_paint:>10.0f}  one-line HTML page"
    )
    print(
        f"{'navigation to first screen drawn, ms':<44} {median['ready ms']:>10.0f} "
        f"{plain_paint:>10.0f}  one-line HTML page"
    )
    print(
        f"{'navigation to file picker on screen, ms':<44} {median['pick ms']:>10.0f} "
        f"{plain_paint:>10.0f}  one-line HTML page"
    )
    for label, count, page_rate, alone_rate, python_rate in rates:
        print(
            f"{f'photos/s in the page, {count} x {label}':<44} {page_rate:>10.2f} "
            f"{python_rate:>10.2f}  hashing PDQ (Python)"
        )
        print(
            f"{'  fingerprint() alone, same page and photos':<44} {alone_rate:>10.2f} "
            f"{python_rate:>10.2f}  hashing PDQ (Python)"
        )
    rows.add("page weight, first screen", v["first KB"], "KB", "gzip -6", v["first gz KB"])
    rows.add(
        "page weight, until files can be picked",
        v["total KB"],
        "KB",
        "gzip -6",
        v["total gz KB"],
    )
    rows.add("first paint", median["paint ms"], "ms", "one-line HTML page", plain_paint)
    rows.add(
        "until the first screen is drawn",
        median["ready ms"],
        "ms",
        "one-line HTML page first paint",
        plain_paint,
    )
    rows.add(
        "until the file picker shows",
        median["pick ms"],
        "ms",
        "one-line HTML page first paint",
        plain_paint,
    )
    for label, _count, page_rate, alone_rate, python_rate in rates:
        rows.add(
            f"photos fingerprinted per second in the page, {label}",
            page_rate,
            "/s",
            "hashing PDQ (Python)",
            python_rate,
        )
        rows.add(
            f"photos per second, the page's fingerprint() alone, {label}",
            alone_rate,
            "/s",
            "hashing PDQ (Python)",
            python_rate,
        )
    if args.json:
        rows.print_json()


if __name__ == "__main__":
    main()
