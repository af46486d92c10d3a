"""``ncii-client ui`` in Debian's Chromium: the person's page (web/) served from this computer,
clicked through as a person would, against a real hub (case puzzle on) behind a recording proxy.

The page makes the case and the fingerprints in the browser, sends them signed through the
local server to the hub, and checks its receipts against the log key ``ncii-client ui`` put in
the page (the one this computer pinned for the hub). Every request the browser makes goes to
``/<token>/`` on 127.0.0.1; the hub sees only the page's hub routes, signed envelopes holding
hash objects, and no browser header, file byte or file name. The case is then recovered with
``ncii-client case recover`` and its status and receipts work there (the CLI never sent them).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clientkit import RecordingProxy, run_cli
from hubkit import PROJECT_ROOT, HubProcess

from crypto import envelope
from crypto.case import CaseSecret

sys.path.insert(0, str(PROJECT_ROOT / "tests" / "web"))

from webkit import chromium

ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
# The hub's case puzzle on and cheap (scrypt N=16): the page solves it as with any hub.
PUZZLE = ("--set", "puzzle=true", "--set", "puzzle_difficulty=2")
PUZZLE += ("--set", "puzzle_scrypt_n=16", "--set", "puzzle_scrypt_r=1")
PHOTOS = (
    ("pdq", "images", "bridge-mods", "aaa-orig.jpg"),
    ("pdq", "images", "misc-images", "wee.jpg"),
)
TIMEOUT_MS = 90_000
# What a signed body may hold (specs/submission.md): anything else is a leak.
BODY_KEYS = {"submission": {"v", "hashes"}, "status-query": {"v"}}
PURPOSE_OF_PATH = {"/v1/submissions": "submission", "/v1/status": "status-query"}
HASH_KEYS = {"pdq": {"algorithm", "hash", "quality"}, "md5": {"algorithm", "hash"}}
HASH_KEYS["sha256"] = HASH_KEYS["md5"]
# Headers a browser sends that must never reach the hub.
BROWSER_HEADERS = ("cookie", "origin", "referer", "sec-fetch-site", "accept-language", "sec-ch-ua")


def tid(name: str) -> str:
    return f"[data-testid='{name}']"


@contextlib.contextmanager
def ui_process(hub: str, home: Path) -> Iterator[str]:
    """The real ``ncii-client ui --no-browser``; yields the address it prints."""
    command = [sys.executable, "-m", "client.cli", "ui", "--no-browser", "--hub", hub]
    proc = subprocess.Popen(
        [*command, "--home", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    url = ""
    deadline = time.monotonic() + 30
    while not url and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        found = re.search(r"http://127\.0\.0\.1:\d+/[A-Za-z0-9_-]+/", line)
        url = found.group(0) if found else ""
    try:
        assert url, "ncii-client ui printed no address"
        yield url
    finally:
        proc.terminate()
        assert proc.wait(10) == 0  # SIGTERM: a clean stop


@pytest.fixture
def photos(tmp_path: Path, conformance_vectors: Path) -> list[Path]:
    """Two photos under names that must never reach the hub."""
    folder = tmp_path / "private photos"
    folder.mkdir()
    out = []
    for n, parts in enumerate(PHOTOS):
        out.append(folder / f"secretname-{n}.jpg")
        shutil.copy(conformance_vectors.joinpath(*parts), out[-1])
    return out


def wait_rows(page: Any, states: list[str]) -> None:
    seen: list[str] = []
    for _ in range(TIMEOUT_MS // 250):
        seen = page.eval_on_selector_all(tid("case-file"), "els => els.map(e => e.dataset.state)")
        if seen == states:
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"case rows {seen}, expected {states}")


def test_the_page_through_ncii_client_ui_makes_a_case_the_cli_recovers(
    tmp_path: Path, photos: list[Path]
) -> None:
    hub = HubProcess(
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'hub.sqlite3'}",
        ("--set", "batch_interval=0.2", *PUZZLE),
    ).start()
    proxy = RecordingProxy(hub.url)
    home = tmp_path / "home"
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with hub.client() as c:
            hub_key = c.get("/v1/log").json()["verifier_key"]
        with ui_process(proxy.url, home) as url, chromium() as browser:
            origin = url.split("/", 3)
            prefix = f"{origin[0]}//{origin[2]}/{origin[3]}"
            page = browser.new_page(locale="en-GB")
            page.set_default_timeout(TIMEOUT_MS)
            problems: list[str] = []
            requests: list[str] = []
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
            page.on(
                "console",
                lambda m: problems.append(m.text) if "Security Policy" in m.text else None,
            )

            def route(r: Any) -> None:
                requests.append(r.request.url)
                r.continue_() if r.request.url.startswith(prefix) else r.abort()

            page.route("**/*", route)
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']")
            # The log key the page checks receipts with: the one first contact pinned.
            meta = page.get_attribute("meta[name='ncii-log-key']", "content")
            assert meta == hub_key
            assert hub_key in (home / "hubs.json").read_text()

            page.click(tid("start-new"))
            for name in ("elig-age-yes", "elig-in-yes", "elig-situation-shared"):
                page.click(tid(name))
            page.click(tid("elig-continue"))
            page.wait_for_selector(tid("recovery-code"))
            case_id = page.inner_text(tid("case-id"))
            code = page.inner_text(tid("recovery-code"))
            assert CaseSecret.from_recovery_code(code).case_id() == case_id
            page.check(tid("code-kept"))
            page.click(tid("code-continue"))
            page.set_input_files(tid("file-input"), [str(p) for p in photos])
            page.wait_for_selector(f"{tid('files-continue')}:not([disabled])")
            page.click(tid("files-continue"))
            assert page.get_attribute(tid("confirm-summary"), "data-hashes") == "6"
            page.click(tid("send"))  # solves the hub's case puzzle, through the local server
            page.wait_for_selector("section[data-step='case']")
            # Receipts checked in the page: checkpoint signed by the meta's key, tiles.
            wait_rows(page, ["in-log", "in-log"])
            page.screenshot(path=str(ARTIFACTS / "ui-page-in-log.png"), full_page=True)
            page.close()

        assert problems == []
        assert requests and all(u.startswith(prefix) for u in requests)
        assert any("/s/" in u and u.endswith("/fingerprint-worker.js") for u in requests)
        _assert_hub_saw_only_fingerprints(proxy, photos)

        # The page's case in the CLI: recover, status and receipts (entries it never sent).
        recovered = run_cli("case", "recover", "-", "--hub", proxy.url, home=home, stdin=code)
        assert recovered.code == 0, recovered.err
        status = run_cli("status", "--json", home=home)
        assert status.code == 0, status.err
        entries = json.loads(status.out)["entries"]
        assert len(entries) == 6 and {e["state"] for e in entries} == {"integrated"}, entries
        assert run_cli("receipts", "fetch", home=home).code == 0
        verified = run_cli("receipts", "verify", home=home)
        assert verified.code == 0 and "6 receipt(s) verified, 0 pending, 0 failed" in verified.out
    finally:
        proxy.close()
        hub.kill()


def _assert_hub_saw_only_fingerprints(proxy: RecordingProxy, photos: list[Path]) -> None:
    seen = proxy.control.seen
    allowed = re.compile(
        r"/v1/log|/v1/case-puzzle|/checkpoint|/v1/status|/v1/submissions"
        r"|/tile/(?:[0-9]+|entries)(?:/x[0-9]{3})*/[0-9]{3}(?:\.p/[0-9]+)?"
    )
    assert {s.path for s in seen} >= {"/v1/submissions", "/v1/status", "/checkpoint"}
    runs = [p.read_bytes()[1000:1064] for p in photos]
    for s in seen:
        assert allowed.fullmatch(s.path), s.path
        headers = {k.lower() for k in s.headers}
        assert not headers & set(BROWSER_HEADERS), (s.path, headers)
        assert b"secretname" not in s.body and not any(r in s.body for r in runs)
        if s.method != "POST":
            assert not s.body
            continue
        purpose = PURPOSE_OF_PATH[s.path]
        opened = envelope.open(s.body, purpose, now=int(time.time()), window_seconds=600)
        body = json.loads(opened.body)
        assert set(body) == BODY_KEYS[purpose]
        for item in body.get("hashes", []):
            assert set(item) == HASH_KEYS[item["algorithm"]], item
