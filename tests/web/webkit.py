"""Serve web/ and test files over real HTTP, and drive Debian's Chromium with Playwright.

The page loads web/fingerprint.js as a plain ES module from a static server (as the hub will
serve it), so module MIME types, the module Worker and the vendored imports are all exercised.
Test files are served from a second folder under /files/ and handed to fingerprint() as Files.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from playwright.sync_api import Browser, Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, also for bench/

from serverkit import POLL

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WEB_ROOT = PROJECT_ROOT / "web"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _Handler(SimpleHTTPRequestHandler):
    """web/ at /, the test's files at /files/; ES modules as text/javascript."""

    files_root: Path

    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
    }

    def translate_path(self, path: str) -> str:
        clean = path.split("?", 1)[0].split("#", 1)[0]
        if clean.startswith("/files/"):
            return str(self.files_root / Path(clean[len("/files/") :]).name)
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class WebPage:
    """A Chromium page on the served web/ folder, with helpers that call fingerprint()."""

    page: Page
    base: str
    files: Path

    def fingerprint(
        self, name: str, data: bytes, *, worker: bool = True, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Run fingerprint() on ``data`` as a File named ``name`` (``options`` passed on);
        returns {ok, records, notes} or {ok: false, name, code, message, records}."""
        (self.files / name).write_bytes(data)
        result: dict[str, Any] = self.page.evaluate(
            """async ([url, name, worker, options]) => {
                const m = await import("/fingerprint.js");
                const blob = await (await fetch(url)).blob();
                const phases = [];
                try {
                    const r = await m.fingerprint(new File([blob], name), {
                        ...options, worker, onProgress: (p) => phases.push(p.phase) });
                    return {ok: true, records: r.records, notes: r.notes, phases};
                } catch (e) {
                    return {ok: false, name: e.name, code: e.code, message: e.message,
                            records: e.records, isTyped: e instanceof m.FingerprintError};
                }
            }""",
            [f"{self.base}/files/{name}", name, worker, options or {}],
        )
        (self.files / name).unlink()
        return result


@contextlib.contextmanager
def serve(files: Path, root: Path = WEB_ROOT) -> Iterator[str]:
    """A static server on 127.0.0.1 for ``root`` (web/) and ``files``; yields its base URL."""
    handler = functools.partial(_Handler, directory=str(root))
    _Handler.files_root = files
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs=POLL, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def web_page(files: Path, root: Path = WEB_ROOT) -> Iterator[WebPage]:
    """Chromium on the fingerprint demo page (demo.html) of a fresh static server (``root``:
    another copy of web/, for before/after benchmarks); every external request fails."""
    with serve(files, root) as base, chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.route(
            "**/*",
            lambda route: (
                route.continue_() if route.request.url.startswith(base) else route.abort()
            ),
        )
        page.goto(f"{base}/demo.html")
        yield WebPage(page, base, files)
        page.close()


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def records_by_algorithm(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["algorithm"]: r for r in result["records"]}


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
