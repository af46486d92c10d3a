"""The local page's server in process: access checks, uploads, fingerprints, actions, errors.

The browser test (test_ui_browser.py) runs the whole flow for real; this file pins each rule of
specs/client-ui.md with one case per row, fast, with a fake CaseOps where the hub is not the
point and the real client library (LibraryOps) where its error mapping is.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from client.ui import server as ui_server
from client.ui.fingerprint import fingerprint
from client.ui.library_ops import LibraryOps
from client.ui.ops import NewCaseView, OpsError, StatusView
from client.ui.server import UiServer, UiState
from crypto.case import CaseSecret

STATIC = Path(ui_server.__file__).parent / "static"


# -- media -------------------------------------------------------------------------------------


def photo(seed: int = 1, fmt: str = "JPEG") -> bytes:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(small).resize((256, 256), Image.Resampling.BILINEAR).save(buffer, fmt)
    return buffer.getvalue()


def flat_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (30, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def video(frames: list[np.ndarray], fps: int = 4) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def noisy_frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        out.append(np.asarray(Image.fromarray(small).resize((64, 64), Image.Resampling.BILINEAR)))
    return out


BLACK = np.zeros((64, 64, 3), np.uint8)
MP4_HEAD = b"\x00\x00\x00\x18ftypisom"


# -- fingerprints of in-memory files -----------------------------------------------------------


def test_fingerprint_photo_gives_pdq_md5_sha256() -> None:
    report = fingerprint(bytearray(photo()))
    assert report.usable and report.kind == "image"
    assert [h["algorithm"] for h in report.hashes] == ["pdq", "md5", "sha256"]
    assert report.hashes[0]["quality"] >= 50


def test_fingerprint_video_gives_vpdq_md5_sha256() -> None:
    report = fingerprint(video(noisy_frames(8)))
    assert report.usable and report.kind == "video"
    assert [h["algorithm"] for h in report.hashes] == ["vpdq", "md5", "sha256"]
    frames = report.hashes[0]["frames"]
    assert frames and all(set(f) == {"frame", "quality", "hash", "timestamp"} for f in frames)
    assert all(isinstance(f["timestamp"], float) for f in frames)


@pytest.mark.parametrize(
    ("data", "kind", "problem"),
    [
        pytest.param(flat_png(), "image", "low-quality", id="flat-picture"),
        pytest.param(video([BLACK] * 4), "video", "low-quality", id="black-video"),
        pytest.param(b"%PDF-1.7 not a picture", "file", "not-media", id="pdf"),
        pytest.param(b"", "file", "not-media", id="empty"),
        pytest.param(photo()[:300], "image", "unreadable", id="truncated-jpeg"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "image", "unreadable", id="broken-png"),
        pytest.param(MP4_HEAD + bytes(100), "video", "unreadable", id="broken-mp4"),
    ],
)  # fmt: skip
def test_fingerprint_left_out_with_a_reason(data: bytes, kind: str, problem: str) -> None:
    report = fingerprint(data)
    assert (report.kind, report.problem, report.hashes) == (kind, problem, ())
    assert report.reason and not report.usable


# -- a server with a fake CaseOps --------------------------------------------------------------


@dataclass
class FakeOps:
    submitted: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    fail_submit: OpsError | None = None
    created: int = 0
    withdrawn: bool = False

    def create_case(self) -> NewCaseView:
        self.created += 1
        secret = CaseSecret(bytes([self.created]) * 16)
        return NewCaseView(secret.case_id(), secret.recovery_code())

    def recover_case(self, code: str) -> str:
        return CaseSecret.from_recovery_code(code).case_id()

    def submit(self, case_id: str, hashes: Sequence[dict[str, Any]]) -> int:
        if self.fail_submit is not None:
            raise self.fail_submit
        self.submitted.append((case_id, list(hashes)))
        return len(hashes)

    def status(self, case_id: str) -> StatusView:
        n = sum(len(h) for c, h in self.submitted if c == case_id)
        return StatusView(case_id, self.withdrawn, n, n, 0, n if self.withdrawn else 0)

    def withdraw_all(self, case_id: str) -> StatusView:
        self.withdrawn = True
        return self.status(case_id)


@dataclass
class Running:
    server: UiServer
    ops: FakeOps
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def origin(self) -> str:
        return self.url.rsplit("/", 2)[0]

    def upload(self, data: bytes) -> httpx.Response:
        return self.http.post(
            self.url + "api/files",
            content=data,
            headers=OCTET,
        )

    def act(self, name: str, body: object | None = None) -> httpx.Response:
        return self.http.post(self.url + "api/" + name, json={} if body is None else body)


def _start(ops: Any, hub: str = "http://hub.invalid") -> Iterator[Running]:
    server = UiServer(UiState(ops=ops, hub_url=hub))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        with httpx.Client(timeout=20) as http:
            yield Running(server, ops, http)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def running() -> Iterator[Running]:
    yield from _start(FakeOps())


# -- access: token, Host, origin, methods ------------------------------------------------------

J = {"Content-Type": "application/json"}
OCTET = {"Content-Type": "application/octet-stream"}
EVIL = {"Origin": "https://attacker.example", **J}
CROSS = {"Sec-Fetch-Site": "cross-site", **J}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

REFUSALS: list[tuple[str, str, str, dict[str, str], bytes, int]] = [
    # id, method, path ({t} = token, {w} = wrong token), headers, body, status
    ("no-token/root", "GET", "/", {}, b"", 403),
    ("no-token/asset", "GET", "/app.js", {}, b"", 403),
    ("no-token/api", "GET", "/api/state", {}, b"", 403),
    ("wrong-token/same-length", "GET", "/{w}/", {}, b"", 403),
    ("wrong-token/prefix", "GET", "/{t_short}/", {}, b"", 403),
    ("wrong-token/longer", "GET", "/{t}x/", {}, b"", 403),
    ("wrong-token/query-instead", "GET", "/?token={t}", {}, b"", 403),
    ("wrong-token/non-ascii", "GET", "/%C3%A9{t}/", {}, b"", 403),
    ("wrong-token/upload", "POST", "/{w}/api/files", OCTET, b"\xff\xd8\xff", 403),
    ("wrong-token/submit", "POST", "/{w}/api/submit", J, b"{}", 403),
    ("host/rebinding", "GET", "/{t}/", {"Host": "attacker.example"}, b"", 403),
    ("host/rebinding-port", "GET", "/{t}/", {"Host": "attacker.example:{port}"}, b"", 403),
    ("host/other-port", "GET", "/{t}/", {"Host": "127.0.0.1:1"}, b"", 403),
    ("origin/cross-site", "POST", "/{t}/api/status", EVIL, b"{}", 403),
    ("origin/sec-fetch-cross", "POST", "/{t}/api/status", CROSS, b"{}", 403),
    ("type/form-post", "POST", "/{t}/api/status", FORM, b"a=1", 415),
    ("type/upload-as-text", "POST", "/{t}/api/files", {"Content-Type": "text/plain"}, b"x", 415),
    ("json/not-json", "POST", "/{t}/api/status", J, b"{nope", 400),
    ("json/array", "POST", "/{t}/api/status", J, b"[]", 400),
    ("json/not-utf8", "POST", "/{t}/api/status", J, b"\xff\xfe", 400),
    ("json/too-large", "POST", "/{t}/api/status", J, b" " * 70000, 413),
    # Deep nesting (issue 12 finding 6): refused by size at 100,000 levels, by depth below it.
    *[
        (f"json/{name}/{route}", "POST", f"/{{t}}/api/{route}", J, body, status)
        for route in ("recover", "submit", "status", "withdraw", "forget")
        for name, body, status in [
            ("nested-100k", b"[" * 100_000 + b"]" * 100_000, 413),
            ("nested-30k", b"[" * 30_000 + b"]" * 30_000, 400),
            ("nested-objects", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 400),
            ("nested-in-code", b'{"code":' + b"[" * 30_000 + b"]" * 30_000 + b"}", 400),
        ]
    ],
    ("route/unknown-get", "GET", "/{t}/etc/passwd", {}, b"", 404),
    ("route/traversal", "GET", "/{t}/..%2F..%2Fetc%2Fpasswd", {}, b"", 404),
    ("route/dot-dot", "GET", "/{t}/../index.html", {}, b"", 403),  # resolved by the client
    ("route/unknown-post", "POST", "/{t}/api/nope", J, b"{}", 404),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [pytest.param(*row[1:], id=row[0]) for row in REFUSALS],
)
def test_access_refusals(
    running: Running, method: str, path: str, headers: dict[str, str], body: bytes, status: int
) -> None:
    token = running.server.token
    port = str(running.server.server_address[1])
    fill = {"t": token, "w": "A" * len(token), "t_short": token[:-1], "port": port}
    path = path.format(**fill)
    headers = {k: v.format(**fill) for k, v in headers.items()}
    response = running.http.request(method, running.origin + path, headers=headers, content=body)
    assert response.status_code == status
    assert response.json()["error"]["code"]
    assert response.headers["Cache-Control"] == "no-store"


def test_token_page_assets_and_security_headers(running: Running) -> None:
    for name, kind in [("", "text/html"), ("app.js", "text/javascript"), ("style.css", "text/css")]:
        response = running.http.get(running.url + name)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith(kind)
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Frame-Options"] == "DENY"
    bare = running.http.get(running.url.rstrip("/"))
    assert bare.status_code == 303 and bare.headers["Location"] == "/" + running.server.token + "/"
    assert running.http.get(running.url.replace("127.0.0.1", "localhost")).status_code == 200


def test_server_listens_on_loopback_only(running: Running) -> None:
    assert running.server.server_address[0] == "127.0.0.1"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/[A-Za-z0-9_-]{43}/", running.url)


def test_each_run_gets_a_fresh_token() -> None:
    tokens = set()
    for _ in range(3):
        server = UiServer(UiState(ops=FakeOps(), hub_url=""))
        tokens.add(server.token)
        server.server_close()
    assert len(tokens) == 3


def test_static_page_loads_nothing_from_elsewhere() -> None:
    """No CDN, fonts or trackers: the only absolute URLs are the two help links."""
    for name in ("index.html", "app.js", "style.css"):
        text = (STATIC / name).read_text()
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'<>)]*", text))
        assert urls <= {"https://takeitdown.ncmec.org/", "https://stopncii.org/"}, (name, urls)
    html = (STATIC / "index.html").read_text()
    assert "<script>" not in html and not re.search(r"<[^>]+\son[a-z]+=", html)  # no inline JS
    assert 'rel="noreferrer noopener"' in html


def test_every_input_has_a_label() -> None:
    html = (STATIC / "index.html").read_text()
    for input_id in re.findall(r'<input[^>]*id="([^"]+)"', html):
        assert f'for="{input_id}"' in html, input_id
    assert 'aria-live="polite"' in html and 'role="alert"' in html


# -- uploads -----------------------------------------------------------------------------------


def test_upload_reports_counts_and_never_echoes_hashes(running: Running) -> None:
    answer = running.upload(photo()).json()
    assert answer["fingerprints"] == 3 and answer["problem"] is None and answer["kind"] == "image"
    assert set(answer) == {"id", "kind", "fingerprints", "frames", "problem", "reason"}
    left_out = running.upload(flat_png()).json()
    assert left_out["problem"] == "low-quality" and "too plain" in left_out["reason"]


def test_upload_buffer_is_overwritten_after_hashing(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bytearray] = []
    real = fingerprint

    def spy(data: bytearray) -> Any:
        seen.append(data)
        return real(data)

    monkeypatch.setattr("client.ui.server.fingerprint", spy)
    assert running.upload(photo()).status_code == 200
    assert len(seen) == 1 and seen[0] and not any(seen[0])


def test_upload_refused_before_reading_when_too_large(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui_server, "MAX_UPLOAD_BYTES", 1000)
    response = running.upload(photo())
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_upload_needs_a_length(running: Running) -> None:
    def chunks() -> Iterator[bytes]:
        yield photo()

    response = running.http.post(
        running.url + "api/files",
        content=chunks(),
        headers=OCTET,
    )
    assert response.status_code == 411


def test_file_count_is_capped(running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui_server, "MAX_FILES", 2)
    assert running.upload(photo(1)).status_code == 200
    assert running.upload(photo(2)).status_code == 200
    assert running.upload(photo(3)).json()["error"]["code"] == "too_many_files"
    assert running.act("forget").status_code == 200
    assert running.upload(photo(3)).status_code == 200


# -- actions -----------------------------------------------------------------------------------


def test_submit_sends_each_hash_once_and_shows_the_code_once(running: Running) -> None:
    a = running.upload(photo(1)).json()["id"]
    again = running.upload(photo(1)).json()["id"]  # the same picture chosen twice
    b = running.upload(photo(2)).json()["id"]
    answer = running.act("submit", {"files": [a, again, b], "new_case": True}).json()
    assert answer["ok"] and answer["sent"] == 6
    CaseSecret.from_recovery_code(answer["recovery_code"])
    [(case_id, hashes)] = running.ops.submitted
    assert case_id == answer["case_id"] and len(hashes) == 6
    # The fingerprints are forgotten once sent; the state names the case, never a code.
    assert running.act("submit", {"files": [a]}).json()["error"]["code"] == "stale"
    state = running.http.get(running.url + "api/state").json()
    assert state == {"hub": "http://hub.invalid", "case_id": case_id}


def test_submit_refusals(running: Running) -> None:
    flat = running.upload(flat_png()).json()["id"]
    assert running.act("submit", {"files": [flat]}).json()["error"]["code"] == "nothing_to_send"
    assert running.act("submit", {"files": "all"}).json()["error"]["code"] == "bad_request"
    assert running.act("submit", {"files": ["0" * 16]}).json()["error"]["code"] == "stale"
    assert running.ops.created == 0


def test_failed_send_keeps_the_case_and_retry_uses_it(running: Running) -> None:
    running.ops.fail_submit = OpsError("unreachable", "Could not reach the service.")
    file_id = running.upload(photo()).json()["id"]
    first = running.act("submit", {"files": [file_id], "new_case": True}).json()
    assert first["ok"] is False and first["error"]["code"] == "unreachable"
    assert first["recovery_code"]  # shown now: the case exists on this computer
    running.ops.fail_submit = None
    retry = running.act("submit", {"files": [file_id], "new_case": False}).json()
    assert retry["ok"] and retry["case_id"] == first["case_id"] and retry["recovery_code"] is None
    assert running.ops.created == 1


def test_status_and_withdraw_need_a_case_and_a_confirmation(running: Running) -> None:
    assert running.act("status").json()["error"]["code"] == "no_case"
    assert running.act("withdraw", {"all": True}).json()["error"]["code"] == "no_case"
    code = CaseSecret(b"\x05" * 16).recovery_code()
    case_id = running.act("recover", {"code": code.lower().replace("-", " ")}).json()["case_id"]
    assert case_id == CaseSecret(b"\x05" * 16).case_id()
    assert running.act("withdraw", {}).json()["error"]["code"] == "bad_request"
    assert running.act("withdraw", {"all": True}).json()["withdrawn"] is True
    assert running.act("status").json()["case_id"] == case_id


# -- the real client library behind the page ---------------------------------------------------


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Running]:
    ops = LibraryOps("http://127.0.0.1:9", tmp_path / "home", sleep=lambda s: None, attempts=2)
    yield from _start(ops, "http://127.0.0.1:9")


def test_library_recover_names_the_group_of_a_typo(library: Running, tmp_path: Path) -> None:
    code = CaseSecret(b"\x07" * 16).recovery_code()
    typo = code[:10] + ("X" if code[10] != "X" else "Y") + code[11:]
    error = library.act("recover", {"code": typo}).json()["error"]
    assert error["code"] == "bad_code" and "group 3" in error["message"]
    assert library.act("recover", {"code": "hello"}).json()["error"]["code"] == "bad_code"
    case_id = library.act("recover", {"code": code}).json()["case_id"]
    assert (tmp_path / "home" / "cases").is_dir() and case_id in str(
        list((tmp_path / "home").rglob("*"))
    )


def test_library_hub_down_keeps_the_case_and_says_so(library: Running, tmp_path: Path) -> None:
    file_id = library.upload(photo()).json()["id"]
    answer = library.act("submit", {"files": [file_id], "new_case": True}).json()
    assert answer["ok"] is False and answer["error"]["code"] == "unreachable"
    assert "Nothing was lost" in answer["error"]["message"]
    assert answer["case_id"] in str(list((tmp_path / "home").rglob("*")))
    assert library.act("status").json()["error"]["code"] == "unreachable"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_library_busy_hub_is_retried_then_reported(tmp_path: Path, status: int) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(status, json={"error": {"code": "x", "message": "busy"}})

    ops = LibraryOps(
        "https://hub.test",
        tmp_path,
        transport=httpx.MockTransport(handler),
        sleep=lambda s: None,
        attempts=3,
    )
    case = ops.create_case()
    with pytest.raises(OpsError) as caught:
        ops.status(case.case_id)
    assert caught.value.code == "unreachable" and len(calls) == 3


def test_library_without_hub_explains(tmp_path: Path) -> None:
    ops = LibraryOps("", tmp_path)
    with pytest.raises(OpsError) as caught:
        ops.status(ops.create_case().case_id)
    assert caught.value.code == "no_hub"


# -- the command ---------------------------------------------------------------------------------


def test_command_refuses_a_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    from client.cli import main

    assert main(["ui", "--no-browser", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


def test_command_reports_a_busy_port(running: Running, capsys: pytest.CaptureFixture[str]) -> None:
    port = running.server.server_address[1]
    from client.cli import main

    assert main(["ui", "--no-browser", "--port", str(port)]) == 2
    assert "cannot listen" in capsys.readouterr().err
