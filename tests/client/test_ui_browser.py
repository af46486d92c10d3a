"""``ncii-client ui`` end to end in headless Chromium against a real hub, through a recording proxy.

The whole flow a person follows (choose files, fingerprint, review, send, see the case id and
recovery code, check status, withdraw) runs in the system Chromium driven by Playwright, against
the real ``ncii-client ui --no-browser`` subprocess and a real ``ncii-hub serve`` subprocess.
Every request the hub receives passes through a proxy that records it, and the test then proves
that only signed fingerprints reached the hub: no image bytes, no file names, no other fields.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright
from skimage import data as skdata

from crypto import envelope
from hashing.digest import digest_bytes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

from hubkit import PROJECT_ROOT, HubProcess

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
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"

# What a signed body may hold (specs/submission.md): anything else is a leak.
BODY_KEYS = {
    "submission": {"v", "hashes"},
    "status-query": {"v"},
    "withdrawal": {"v", "all"},
}
PURPOSE_OF_PATH = {
    "/v1/submissions": "submission",
    "/v1/status": "status-query",
    "/v1/withdrawals": "withdrawal",
}
HASH_KEYS = {
    "pdq": {"algorithm", "hash", "quality"},
    "md5": {"algorithm", "hash"},
    "sha256": {"algorithm", "hash"},
    "vpdq": {"algorithm", "frames"},
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the hub's storage is tested on both databases in tests/hub."""
    return f"sqlite:///{tmp_path / 'hub.sqlite3'}"


# -- a recording reverse proxy in front of the hub ------------------------------------------


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class RecordingProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: RecordingProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        with self.server.lock:
            self.server.seen.append(Seen(self.command, self.path, headers, body))
        forward = {k: v for k, v in headers.items() if k.lower() not in {"host", "content-length"}}
        upstream = httpx.request(
            self.command, self.server.upstream + self.path, content=body, headers=forward
        )
        self.send_response(upstream.status_code)
        for key, value in upstream.headers.items():
            if key.lower() not in {
                "content-length",
                "transfer-encoding",
                "connection",
                "content-encoding",
            }:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(upstream.content)))
        self.end_headers()
        self.wfile.write(upstream.content)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def proxy(tmp_path: Path, database_url: str) -> Iterator[RecordingProxy]:
    hub = HubProcess(tmp_path / "data", database_url, ("--set", "batch_interval=0.05")).start()
    server = RecordingProxy(hub.url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        hub.kill()


@dataclass
class UiProcess:
    proc: subprocess.Popen[str]
    url: str


@contextlib.contextmanager
def start_ui(hub_url: str, home: Path) -> Iterator[UiProcess]:
    """The real ``ncii-client ui --no-browser`` subprocess; its printed address."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "client.cli", "ui", "--no-browser", "--home", str(home)]
    if hub_url:
        command += ["--hub", hub_url]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
    )
    url = ""
    deadline = time.monotonic() + 20
    assert proc.stdout is not None
    while time.monotonic() < deadline and not url:
        line = proc.stdout.readline()
        if not line:
            break
        found = re.search(r"http://127\.0\.0\.1:\d+/\S+/", line)
        url = found.group(0) if found else ""
    if not url:
        proc.kill()
        pytest.fail("ncii-client ui printed no address")
    try:
        yield UiProcess(proc, url)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def ui(proxy: RecordingProxy, tmp_path: Path) -> Iterator[UiProcess]:
    with start_ui(proxy.url, tmp_path / "home") as running:
        yield running


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    """Two real photos and one blank picture, under names that must never reach the hub."""
    folder = tmp_path / "private photos"
    folder.mkdir()
    paths = {
        "astronaut": folder / "astronaut-secretname.jpg",
        "coffee": folder / "coffee-secretname.png",
        "blank": folder / "blank-secretname.png",
    }
    astronaut = skdata.astronaut()  # type: ignore[no-untyped-call]
    coffee = skdata.coffee()  # type: ignore[no-untyped-call]
    Image.fromarray(astronaut).save(paths["astronaut"], quality=90)
    Image.fromarray(coffee).save(paths["coffee"])
    Image.new("RGB", (200, 200), (128, 128, 128)).save(paths["blank"])
    return paths


# -- the browser flow --------------------------------------------------------------------------


def _status_text(page: Page) -> str:
    return page.locator("#status").inner_text()


def _flow(page: Page, ui: UiProcess, photos: dict[str, Path]) -> str:
    page.goto(ui.url)
    expect(page.locator("h1")).to_contain_text("Protect your private photos")
    expect(page.locator("#promise")).to_contain_text("stay on this computer")
    expect(page.get_by_role("link", name=re.compile("Take It Down"))).to_have_attribute(
        "href", "https://takeitdown.ncmec.org/"
    )

    # Step 1: choose. Previews are local object URLs only.
    page.get_by_label("Photos and videos to protect").set_input_files(list(photos.values()))
    expect(page.locator("#chosen li")).to_have_count(3)
    for src in page.locator("#chosen img").evaluate_all("els => els.map(e => e.src)"):
        assert src.startswith("blob:")
    page.get_by_role("button", name="Make fingerprints").click()

    # Step 2: review. Two photos ready with 3 fingerprints each, the blank one left out.
    expect(page.locator("#step-review")).to_be_visible()
    expect(page.locator("#summary")).to_contain_text(
        "6 fingerprints from 2 files are ready to send"
    )
    expect(page.locator("#summary")).to_contain_text("1 file is left out")
    expect(page.locator("#review li", has_text="blank-secretname.png")).to_contain_text("too plain")
    expect(page.locator("#live")).to_contain_text("Nothing has been sent yet")
    page.screenshot(path=str(ARTIFACTS / "ui-review.png"), full_page=True)
    page.get_by_role("button", name="Send fingerprints").click()

    # Step 3: the case id and the recovery code, shown once.
    expect(page.locator("#step-case")).to_be_visible()
    expect(page.locator("#sent-note")).to_contain_text("accepted 6 fingerprints")
    case_id = page.locator("#case-id").inner_text()
    assert re.fullmatch(r"[0-9A-Z]{16}", case_id)
    code = page.locator("#recovery-code").inner_text()
    assert re.fullmatch(r"([0-9A-Z]{4}-){6}[0-9A-Z]{4}", code)
    expect(page.get_by_role("button", name="Continue")).to_be_disabled()
    page.screenshot(path=str(ARTIFACTS / "ui-case.png"), full_page=True)
    page.get_by_label("I have written down my recovery code").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#recovery-code")).not_to_contain_text(code)

    # Step 4: status until the log includes all six, then withdraw everything.
    expect(page.locator("#status-case")).to_have_text(case_id)
    deadline = time.monotonic() + 20
    while True:
        page.get_by_role("button", name="Check status").click()
        expect(page.locator("#status")).to_be_visible()
        if "6 are recorded in the public log" in _status_text(page):
            break
        assert time.monotonic() < deadline, _status_text(page)
        time.sleep(0.2)
    assert "6 fingerprints are active" in _status_text(page)
    page.get_by_role("button", name="Withdraw everything…").click()
    page.get_by_role("button", name="No, keep them").click()
    expect(page.locator("#confirm")).to_be_hidden()
    page.get_by_role("button", name="Withdraw everything…").click()
    page.get_by_role("button", name="Yes, withdraw everything").click()
    expect(page.locator("#status")).to_contain_text("This case is withdrawn")
    expect(page.locator("#status")).to_contain_text("6 fingerprints were withdrawn")
    page.get_by_role("button", name="Check status").click()
    expect(page.locator("#status")).to_contain_text("This case is withdrawn")
    page.screenshot(path=str(ARTIFACTS / "ui-withdrawn.png"), full_page=True)
    return case_id


@pytest.mark.slow
def test_ui_full_flow_in_chromium_sends_only_hashes(
    ui: UiProcess, proxy: RecordingProxy, photos: dict[str, Path]
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            external: list[str] = []
            page.on(
                "request",
                lambda r: (
                    external.append(r.url)
                    if not r.url.startswith((ui.url, "blob:", "data:"))
                    else None
                ),
            )
            case_id = _flow(page, ui, photos)
        finally:
            browser.close()
    assert external == []  # no CDN, no fonts, nothing outside the local page
    _assert_hub_saw_only_fingerprints(proxy.seen, photos, case_id)


def _assert_hub_saw_only_fingerprints(
    seen: list[Seen], photos: dict[str, Path], case_id: str
) -> None:
    contents = {name: path.read_bytes() for name, path in photos.items()}
    forbidden_text = [p.name for p in photos.values()] + [p.stem for p in photos.values()]
    forbidden_text += ["secretname", "private photos", str(photos["blank"].parent)]
    expected: set[str] = set()
    for name in ("astronaut", "coffee"):
        d = digest_bytes(contents[name])
        expected |= {d.md5_hex, d.sha256_hex}

    purposes: list[str] = []
    submitted: list[dict[str, object]] = []
    assert seen, "the hub received nothing"
    for request in seen:
        head = f"{request.method} {request.path} " + json.dumps(request.headers)
        everything = head.encode() + request.body
        for text in forbidden_text:
            assert text.encode() not in everything, f"{text!r} reached the hub"
        for name, blob in contents.items():
            for start in range(0, len(blob) - 64, max(1, len(blob) // 50)):
                assert blob[start : start + 64] not in everything, (
                    f"bytes of {name} reached the hub"
                )
        for magic in (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"ftyp"):
            assert magic not in request.body
        if request.method == "POST":
            assert request.headers.get("Content-Type") == "application/vnd.ncii.envelope"
            purpose = PURPOSE_OF_PATH[request.path]
            opened = envelope.open(request.body, purpose, now=int(time.time()), window_seconds=600)
            body = json.loads(opened.body)
            purposes.append(purpose)
            assert set(body) == BODY_KEYS[purpose], (purpose, sorted(body))
            if purpose == "submission":
                for item in body["hashes"]:
                    assert set(item) == HASH_KEYS[item["algorithm"]]
                    submitted.append(item)
        else:
            assert request.body == b""

    assert purposes.count("submission") == 1
    assert "status-query" in purposes and purposes[-1] in {"status-query", "withdrawal"}
    assert purposes.count("withdrawal") == 1
    assert len(submitted) == 6
    exact = {str(i["hash"]) for i in submitted if i["algorithm"] in {"md5", "sha256"}}
    assert exact == expected  # fingerprints of the two good photos, not of the blank one
    assert sorted(str(i["algorithm"]) for i in submitted) == [
        "md5",
        "md5",
        "pdq",
        "pdq",
        "sha256",
        "sha256",
    ]
    assert case_id  # the case the page showed is the one that signed (checked by the hub)


def test_ui_refuses_requests_without_the_token(tmp_path: Path) -> None:
    with start_ui("", tmp_path / "home") as ui:
        _check_refusals(ui)


def _check_refusals(ui: UiProcess) -> None:
    base = ui.url.split("/", 3)
    origin = "/".join(base[:3])
    token = base[3].rstrip("/")
    with httpx.Client(timeout=10) as http:
        assert http.get(ui.url).status_code == 200
        assert http.get(ui.url + "app.js").status_code == 200
        wrong = "A" * len(token)
        for path in ["/", "/app.js", "/api/state", f"/{wrong}/", f"/{wrong}/api/state",
                     f"/{token[:-1]}/", f"/{token}x/", f"/?token={token}", "/api/status",
                     f"/%2F{token}/", f"/{token.lower()}/", "/ /"]:  # fmt: skip
            assert http.get(origin + path).status_code == 403, path
        for path in ["/api/files", f"/{wrong}/api/files", f"/{wrong}/api/submit"]:
            response = http.post(
                origin + path,
                content=b"\xff\xd8\xff",
                headers={"Content-Type": "application/octet-stream"},
            )
            assert response.status_code == 403, path
        # A page on another name that resolves here (DNS rebinding) is refused too.
        assert http.get(ui.url, headers={"Host": "evil.example"}).status_code == 403
        assert (
            http.get(ui.url, headers={"Host": f"evil.example:{base[2].split(':')[1]}"}).status_code
            == 403
        )
        assert ui.proc.poll() is None
