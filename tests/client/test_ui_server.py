"""``ncii-client ui``'s server over real HTTP: the page's files and headers, the access checks,
and the forwarding of the page's hub requests (to a real hub, and to a hostile one for the
bounds). specs/client-ui.md. The browser test (test_ui_browser.py) loads the page for real.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from clientkit import run_cli
from hubkit import (
    ENVELOPE_TYPE,
    Case,
    HubProcess,
    free_port,
    random_pdq,
    random_sha256,
    web_with_log_key_meta,
)
from serverkit import POLL

from client.ui.command import resolve_log_key
from client.ui.forward import MAX_ANSWER_BYTES, MAX_CONCURRENT, HubForwarder
from client.ui.server import MAX_BODY_BYTES, UiServer, new_token
from client.ui.webapp import WebAppError, load_web_app, read_web_dir
from crypto.keys import generate_signer_key
from crypto.page import content_security_policy, sri

KEY = generate_signer_key("hub.test/log").verifier.encode()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return web_with_log_key_meta(tmp_path_factory.mktemp("ui") / "web")


@pytest.fixture(scope="module")
def plain_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A real hub without the case puzzle (envelopes are posted by hand here)."""
    tmp = tmp_path_factory.mktemp("uihub")
    hub = HubProcess(
        tmp / "data", f"sqlite:///{tmp / 'h.sqlite3'}", ("--set", "batch_interval=0.05")
    ).start()
    yield hub
    hub.kill()


class Ui:
    """A UiServer in a thread; ``request`` speaks raw HTTP/1.1 so every header is the test's."""

    def __init__(self, web: Path, hub: str | None, log_key: str | None = KEY, **kw: Any) -> None:
        self.token = new_token()
        self.app = load_web_app(web, self.token, log_key)
        forwarder = HubForwarder(hub, **kw) if hub else None
        self.server = UiServer(self.app, self.token, forwarder)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs=POLL, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            sent = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
            if body is not None and "Content-Length" not in sent:
                sent["Content-Length"] = str(len(body))
            for k, v in sent.items():
                if v is not None:
                    conn.putheader(k, v)
            conn.endheaders(body)
            r = conn.getresponse()
            got = {k.lower(): v for k, v in r.getheaders()}
            got["set-cookie-count"] = str(len([k for k, _ in r.getheaders() if k == "Set-Cookie"]))
            return r.status, got, r.read()
        finally:
            conn.close()

    def get(self, route: str, **kw: Any) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", f"/{self.token}/{route}", **kw)

    def post(self, route: str, body: bytes, **headers: str) -> tuple[int, dict[str, str], bytes]:
        sent = {
            "Content-Type": ENVELOPE_TYPE,
            **{k.replace("_", "-"): v for k, v in headers.items()},
        }
        return self.request("POST", f"/{self.token}/{route}", body, sent)


@pytest.fixture
def ui(web: Path, plain_hub: HubProcess) -> Iterator[Callable[..., Ui]]:
    made: list[Ui] = []

    def make(hub: str | None = plain_hub.url, **kw: Any) -> Ui:
        made.append(Ui(web, hub, **kw))
        return made[-1]

    yield make
    for u in made:
        u.close()


def _error_code(body: bytes) -> str:
    return str(json.loads(body)["error"]["code"])


# -- the page -----------------------------------------------------------------------------


def test_the_page_is_web_rendered_under_the_token_with_the_log_key(ui: Any, web: Path) -> None:
    u = ui()
    status, headers, index = u.get("")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"] == u.app.csp
    assert u.app.csp.startswith(content_security_policy("'sha256-")[:40])
    for name, value in {
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "cross-origin-opener-policy": "same-origin",
    }.items():
        assert headers[name] == value
    assert headers["set-cookie-count"] == "0"
    text = index.decode()
    assert f'<meta name="ncii-log-key" content="{KEY}">' in text
    # Every file is loaded from /<token>/s/<tree>/..., with integrity, nothing from elsewhere.
    prefix = f"/{u.token}/s/{u.app.tree}/"
    loads = re.findall(
        r'<(?:script|link)[^>]* (?:src|href)="([^"]+)"[^>]*integrity="([^"]+)"', text
    )
    assert loads and all(url.startswith(prefix) for url, _ in loads)
    importmap = json.loads(re.search(r'<script type="importmap">(.*?)</script>', text, re.S)[1])  # type: ignore[index]
    files = read_web_dir(web)
    pinned = {prefix + p for p in files if p.endswith((".js", ".json"))}
    assert set(importmap["integrity"]) == pinned
    for path, data in files.items():
        status, headers, body = u.get(f"s/{u.app.tree}/{path}")
        assert status == 200 and body == data, path
        assert headers["x-content-type-options"] == "nosniff"
        if path.endswith(".js"):
            assert headers["content-type"] == "text/javascript; charset=utf-8"
            assert importmap["integrity"][prefix + path] == sri(data)
    for url, integrity in loads:
        assert sri(files[url.removeprefix(prefix)]) == integrity
    # Other trees, tests, scripts, traversal: 404.
    for route in (
        f"s/{'0' * 32}/index.html",
        f"s/{u.app.tree}/test/pdq.test.mjs",
        f"s/{u.app.tree}/scripts/vendor.mjs",
        f"s/{u.app.tree}/../pyproject.toml",
        f"s/{u.app.tree}/%2e%2e/pyproject.toml",
        "index.html",
        "api/state",
    ):
        assert u.get(route)[0] == 404, route


def test_no_log_key_leaves_the_meta_empty_and_no_meta_is_fine(
    ui: Any, web: Path, tmp_path: Path
) -> None:
    u = ui(log_key=None)
    assert b'<meta name="ncii-log-key" content="">' in u.get("")[2]
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "index.html").write_text("<!doctype html><head><title>x</title></head>")
    assert b"ncii-log-key" not in load_web_app(bare, "t", KEY).index
    (bare / "index.html").write_text("<!doctype html><head><script>x()</script></head>")
    with pytest.raises(WebAppError, match="inline <script>"):
        load_web_app(bare, "t", KEY)


# -- access checks ------------------------------------------------------------------------


def test_host_token_and_method_checks(ui: Any) -> None:
    u = ui()
    t = u.token
    assert _error_code(u.request("GET", f"/{t}/", headers={"Host": "evil.example"})[2]) == (
        "wrong_host"
    )
    assert u.request("GET", f"/{t}/", headers={"Host": f"localhost:{u.port}"})[0] == 200
    for target in ("/", f"/{t[:-1]}/", f"/{t}x/", f"/{t.upper()}/", f"/?{t}", f"/x/{t}/"):
        status, headers, body = u.request("GET", target)
        assert (status, _error_code(body)) == (403, "forbidden"), target
        assert headers["connection"] == "close"
    status, headers, _ = u.request("GET", f"/{t}")
    assert status == 303 and headers["location"] == f"/{t}/"
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        assert u.request(method, f"/{t}/v1/status")[0] == 405, method
    assert u.request("GET", f"/{t}/" + "a" * 5000)[0] == 414


def test_post_checks_come_before_anything_reaches_the_hub(ui: Any) -> None:
    u = ui()
    raw = Case().status_query()
    assert _error_code(u.post("v1/status", raw, Origin="https://evil.example")[2]) == (
        "cross_origin"
    )
    assert _error_code(u.post("v1/status", raw, Sec_Fetch_Site="cross-site")[2]) == ("cross_origin")
    assert u.post("v1/status", raw, Origin=f"http://localhost:{u.port}")[0] == 404  # unknown case
    assert u.post("v1/status", raw, Content_Type="application/json")[0] == 415
    assert u.post("v1/status", raw, Content_Type="text/plain")[0] == 415
    status, _, _ = u.request(
        "POST",
        f"/{u.token}/v1/status",
        raw,
        {"Content-Type": ENVELOPE_TYPE, "Transfer-Encoding": "chunked", "Content-Length": None},  # type: ignore[dict-item]
    )
    assert status == 411
    huge = {"Content-Type": ENVELOPE_TYPE, "Content-Length": str(MAX_BODY_BYTES + 1)}
    assert _error_code(u.request("POST", f"/{u.token}/v1/status", b"", huge)[2]) == "too_large"
    assert u.post("v1/feed/ack", raw)[0] == 404
    assert u.post("v1/log", raw)[0] == 404


# -- forwarding to a real hub -------------------------------------------------------------


def test_the_page_routes_reach_the_hub_and_nothing_else_does(
    ui: Any, plain_hub: HubProcess
) -> None:
    u = ui()
    with plain_hub.client() as hub:
        for route in ("v1/log", "checkpoint", "page/manifest", "v1/witnesses"):
            status, headers, body = u.get(route)
            direct = hub.get("/" + route)
            assert status == direct.status_code == 200, route
            assert headers["cache-control"] == "no-store"
            assert "sandbox" in headers["content-security-policy"]
            if route != "v1/log":  # the log's size may grow in between
                assert body == direct.content, route
    case = Case()
    status, _, body = u.post("v1/submissions", case.submission([random_pdq(), random_sha256()]))
    assert status == 202, body
    answer = json.loads(body)
    assert answer["case_id"] == case.case_id and len(answer["entries"]) == 2
    status, _, body = u.post("v1/status", case.status_query())
    assert status == 200 and json.loads(body)["case_id"] == case.case_id
    deadline = time.monotonic() + 20
    while json.loads(u.get("v1/log")[2])["size"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    status, headers, tile = u.get("tile/0/000.p/2")
    assert status == 200 and len(tile) == 64
    assert headers["content-type"] == "application/octet-stream"
    status, _, body = u.get("v1/proof/inclusion?index=0&size=2")
    assert status in (200, 400, 404) and body  # the hub's own answer, passed through
    # The hub's refusals come back as the hub gave them.
    assert _error_code(u.post("v1/status", Case().status_query())[2]) == "unknown_case"
    # Routes the page never uses are not forwarded.
    for route in ("metrics", "healthz", "readyz", "v1/feed/batches", "feed/x", "tile/../x", ""):
        if route:
            assert u.get(route)[0] == 404, route
    assert u.get("v1/log?x=<script>")[0] == 400
    assert u.get("v1/log?" + "a" * 600)[0] == 400


def test_without_a_hub_the_page_is_served_and_hub_routes_say_so(ui: Any) -> None:
    u = ui(hub=None)
    assert u.get("")[0] == 200
    status, _, body = u.get("v1/log")
    assert (status, _error_code(body)) == (502, "no_hub")


# -- forwarding to a hostile hub ----------------------------------------------------------


class Hostile(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        super().__init__(("127.0.0.1", 0), _HostileHandler)
        threading.Thread(target=self.serve_forever, kwargs=POLL, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _HostileHandler(BaseHTTPRequestHandler):
    server: Hostile
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        return

    def _answer(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        for k, v in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(k.replace("_", "-"), v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.do_GET()

    def do_GET(self) -> None:
        self.server.seen.append({k.lower(): v for k, v in self.headers.items()})
        path = self.path
        if path == "/v1/log":
            self._answer(
                200,
                b"<script>alert(1)</script>",
                Content_Type="text/html",
                Set_Cookie="s=1",
                Access_Control_Allow_Origin="*",
                Retry_After="7",
            )
        elif path == "/checkpoint":
            self._answer(302, b"", Location="https://evil.example/")
        elif path == "/page/manifest":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()  # no length: streams until the cap
            chunk = b"x" * 65536
            try:
                for _ in range(MAX_ANSWER_BYTES // len(chunk) + 2):
                    self.wfile.write(chunk)
            except OSError:
                pass
            self.close_connection = True
        elif path == "/v1/witnesses":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
        elif path == "/v1/case-puzzle":
            time.sleep(2.0)
            self._answer(200, b"{}", Content_Type="application/json")
        else:
            self._answer(200, b"{}", Content_Type="application/json")


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    server = Hostile()
    yield server
    server.shutdown()
    server.server_close()


def test_a_hostile_hub_cannot_serve_a_script_or_a_cookie_through_the_page(
    ui: Any, hostile: Hostile
) -> None:
    u = ui(hub=hostile.url)
    status, headers, body = u.get("v1/log")
    assert status == 200 and body == b"<script>alert(1)</script>"
    assert headers["content-type"] == "application/octet-stream"
    assert headers["set-cookie-count"] == "0" and "access-control-allow-origin" not in headers
    assert headers["content-security-policy"].startswith("default-src 'none'; sandbox")
    assert headers["retry-after"] == "7"
    status, headers, body = u.get("checkpoint")
    assert (status, _error_code(body)) == (502, "hub_redirect") and "location" not in headers
    status, _, body = u.get("page/manifest")
    assert (status, _error_code(body)) == (502, "too_large")


def test_nothing_but_the_request_itself_reaches_the_hub(ui: Any, hostile: Hostile) -> None:
    u = ui(hub=hostile.url)
    browser = {
        "Cookie": "session=secret",
        "Authorization": "Bearer secret",
        "Referer": f"http://127.0.0.1:{u.port}/{u.token}/",
        "Origin": f"http://127.0.0.1:{u.port}",
        "Sec-Fetch-Site": "same-origin",
        "User-Agent": "Mozilla/5.0 (person's browser)",
        "Accept-Language": "ur",
        "X-Forwarded-For": "10.0.0.1",
        "NCII-Case-Puzzle": "ab.cd",
        "Content-Type": ENVELOPE_TYPE,
    }
    assert u.request("POST", f"/{u.token}/v1/submissions", b"sealed", browser)[0] == 200
    assert u.request("GET", f"/{u.token}/tile/0/000", headers=browser)[0] == 200
    post, get = hostile.seen
    assert set(post) == {
        "host",
        "accept",
        "accept-encoding",
        "connection",
        "user-agent",
        "content-type",
        "content-length",
        "ncii-case-puzzle",
    }
    assert post["user-agent"] == "ncii-client-ui" and post["ncii-case-puzzle"] == "ab.cd"
    assert set(get) == {"host", "accept", "accept-encoding", "connection", "user-agent"}
    assert u.token not in json.dumps(hostile.seen)


def test_slow_answers_time_out_and_forwards_are_few_at_once(ui: Any, hostile: Hostile) -> None:
    u = ui(hub=hostile.url, deadline=1.0)
    started = time.monotonic()
    status, _, body = u.get("v1/witnesses")  # one byte every 0.1 s
    assert (status, _error_code(body)) == (504, "hub_timeout")
    assert time.monotonic() - started < 5
    u = ui(hub=hostile.url)  # answers in 2 s: the first eight hold every slot meanwhile
    with ThreadPoolExecutor(MAX_CONCURRENT + 4) as pool:
        results = list(pool.map(lambda _: u.get("v1/case-puzzle"), range(MAX_CONCURRENT + 4)))
    busy = [h for s, h, b in results if s == 503 and _error_code(b) == "busy"]
    assert busy and all(h["retry-after"] == "1" for h in busy)
    assert sum(1 for s, _, _ in results if s == 200) >= MAX_CONCURRENT // 2


# -- the command --------------------------------------------------------------------------


def test_command_options_and_exit_codes(tmp_path: Path, plain_hub: HubProcess) -> None:
    home = tmp_path / "home"
    assert run_cli("ui", "--no-browser", "--port", "70000", home=home).code == 2
    bad = run_cli("ui", "--no-browser", "--log-key", "nonsense", home=home)
    assert bad.code == 2 and "--log-key" in bad.err
    far = run_cli("ui", "--no-browser", "--hub", "http://192.0.2.1:1", home=home)
    assert far.code == 2 and "--insecure-http" in far.err
    down = run_cli("ui", "--no-browser", "--hub", f"http://127.0.0.1:{free_port()}", home=home)
    assert down.code == 3
    # First contact pins the hub's key (as every command does) ...
    with plain_hub.client() as c:
        hub_key = c.get("/v1/log").json()["verifier_key"]
    assert resolve_log_key(plain_hub.url, None, home, False) == hub_key
    assert plain_hub.url in (home / "hubs.json").read_text()
    assert resolve_log_key(plain_hub.url, hub_key, home, False) == hub_key
    # ... and a --log-key that is not the pinned one is refused.
    other = run_cli("ui", "--no-browser", "--hub", plain_hub.url, "--log-key", KEY, home=home)
    assert other.code == 1 and "pinned" in other.err
    with _Listening() as port:
        busy = run_cli("ui", "--no-browser", "--port", str(port), home=home)
        assert busy.code == 2 and "cannot listen" in busy.err


class _Listening:
    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_help_says_what_it_is() -> None:
    out = run_cli("ui", "--help").out
    for words in ("--hub", "--log-key", "--no-browser", "127.0.0.1", "never leave the browser"):
        assert words in out.replace("\n", " "), words
