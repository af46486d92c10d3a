"""``ncii-audit page`` against a real hub: honest, behind a proxy that changes one byte, with a
wrong key, and compared with a source checkout (specs/page-manifest.md section 3)."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hubkit import PROJECT_ROOT, HubProcess, verifier_of, web_with_log_key_meta
from serverkit import POLL

from crypto.keys import generate_signer_key

AUDIT = [sys.executable, "-m", "auditor.cli"]
FAST = ("--set", "batch_interval=0.05")


def _audit(*args: str) -> tuple[int, dict[str, Any]]:
    run = subprocess.run(
        [*AUDIT, "page", *args, "--json"], capture_output=True, cwd=PROJECT_ROOT, timeout=120
    )
    return run.returncode, json.loads(run.stdout) if run.stdout.strip() else {}


def _log_key(hub: HubProcess) -> str:
    with hub.client() as c:
        return verifier_of(c)[0].encode()


@pytest.fixture
def proxy() -> Iterator[Callable[[str, Callable[[str, bytes], bytes]], str]]:
    """``proxy(upstream, alter)``: a reverse proxy whose bodies pass through ``alter(path,
    body)``; yields its base URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(upstream: str, alter: Callable[[str, bytes], bytes]) -> str:
        host, port = upstream.removeprefix("http://").split(":")

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                conn.request("GET", self.path)
                r = conn.getresponse()
                body = alter(self.path, r.read())
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "connection", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                conn.close()

            def log_message(self, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs=POLL, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def test_honest_hub_passes_and_matches_the_source(hub: HubProcess) -> None:
    code, report = _audit("--hub", hub.url, "--log-key", _log_key(hub))
    assert code == 0, report
    assert report["status"] == "ok" and report["files_checked"] >= 15
    assert report["loads_followed"] >= 13  # index, app, modules, worker, vendored code
    code, report = _audit("--hub", hub.url, "--log-key", _log_key(hub), "--source", ".")
    assert code == 0, report
    assert report["source_compared"] is True


def test_one_altered_byte_is_named(hub: HubProcess, proxy: Any) -> None:
    def alter(path: str, body: bytes) -> bytes:
        if path.endswith("/pdq.js"):
            return body.replace(b"const ", b"const  ", 1)
        return body

    code, report = _audit("--hub", proxy(hub.url, alter), "--log-key", _log_key(hub))
    assert code == 1
    # Named by the manifest check and by the import map's integrity (what a browser refuses).
    assert {(p["path"], p["kind"]) for p in report["problems"]} == {
        ("pdq.js", "modified"),
        ("pdq.js", "sri"),
    }


def test_an_altered_index_is_named(hub: HubProcess, proxy: Any) -> None:
    def alter(path: str, body: bytes) -> bytes:
        if path == "/":
            return body.replace(b"</body>", b"<img src=https://evil.example/x></body>")
        return body

    code, report = _audit("--hub", proxy(hub.url, alter), "--log-key", _log_key(hub))
    assert code == 1
    kinds = {(p["path"], p["kind"]) for p in report["problems"]}
    assert ("/", "modified") in kinds and ("/", "third_party") in kinds


def test_wrong_key_or_broken_signature_fails(hub: HubProcess, proxy: Any) -> None:
    key = _log_key(hub)
    other = generate_signer_key(key.split("+")[0]).verifier.encode()
    code, report = _audit("--hub", hub.url, "--log-key", other)
    assert code == 1
    assert report["problems"][0]["kind"] == "bad_signature"

    def flip(path: str, body: bytes) -> bytes:
        if path == "/page/manifest":
            return body.replace(b"demo.js", b"dem0.js")
        return body

    code, report = _audit("--hub", proxy(hub.url, flip), "--log-key", key)
    assert code == 1
    assert report["problems"][0]["path"] == "/page/manifest"


def test_hub_on_a_modified_web_differs_from_the_source(tmp_path: Path) -> None:
    web = tmp_path / "web"
    shutil.copytree(PROJECT_ROOT / "web", web, ignore=shutil.ignore_patterns("node_modules"))
    (web / "kinds.js").write_bytes((web / "kinds.js").read_bytes() + b"\n")
    hub = HubProcess(
        tmp_path / "data", f"sqlite:///{tmp_path / 'h.sqlite3'}", (*FAST, "--web-dir", str(web))
    ).start()
    try:
        key = _log_key(hub)
        code, report = _audit("--hub", hub.url, "--log-key", key)
        assert code == 0, report  # it serves what it signed ...
        code, report = _audit("--hub", hub.url, "--log-key", key, "--source", str(PROJECT_ROOT))
        assert code == 1  # ... but not what the source holds
        assert [(p["path"], p["kind"]) for p in report["problems"]] == [
            ("kinds.js", "differs_from_source")
        ]
    finally:
        hub.kill()


def test_unreachable_hub_is_exit_3_and_bad_key_exit_2(tmp_path: Path) -> None:
    key = generate_signer_key("example.org/log").verifier.encode()
    assert _audit("--hub", "http://127.0.0.1:9", "--log-key", key)[0] == 3
    assert _audit("--hub", "http://127.0.0.1:9", "--log-key", "nonsense")[0] == 2


def test_a_load_missing_from_the_manifest_is_named(tmp_path: Path) -> None:
    """A module that imports a file the hub does not serve (here: not in web/ at all)."""
    web = tmp_path / "web"
    shutil.copytree(PROJECT_ROOT / "web", web, ignore=shutil.ignore_patterns("node_modules"))
    app = web / "app.js"
    app.write_bytes(b'import "./extra.js";\n' + app.read_bytes())
    hub = HubProcess(
        tmp_path / "data", f"sqlite:///{tmp_path / 'h.sqlite3'}", (*FAST, "--web-dir", str(web))
    ).start()
    try:
        code, report = _audit("--hub", hub.url, "--log-key", _log_key(hub))
        assert code == 1
        assert [(p["path"], p["kind"]) for p in report["problems"]] == [("app.js", "unlisted")]
    finally:
        hub.kill()


def test_a_signed_index_that_is_not_the_standard_rewrite_is_caught() -> None:
    """A hub (operator) that lists an honest index.html but signs and serves another / is
    caught without --source: / must be the rewrite of the listed index.html."""
    import hashlib

    import httpx

    from auditor.page import audit_page
    from crypto.note import sign_note
    from crypto.page import PageManifest as Manifest
    from crypto.page import build_manifest, content_security_policy, encode_manifest

    files = {
        "index.html": b'<!doctype html><head></head><body><script type="module" src="a.js">'
        b"</script></body>",
        "a.js": b"export const a = 1;\n",
    }
    key = generate_signer_key("evil.example/log")
    honest, rendered = build_manifest("evil.example/log", files)
    evil = rendered.body.replace(b"</body>", b'<script src="/s/x/steal.js"></script></body>')
    manifest = Manifest(honest.origin, honest.tree, hashlib.sha256(evil).digest(), honest.files)
    note = sign_note(encode_manifest(manifest), [key])
    headers = {
        "Content-Security-Policy": content_security_policy(rendered.importmap_hash),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cache-Control": "no-cache, immutable",
    }

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body = {"/page/manifest": note, "/": evil}.get(path)
        if body is None and path.startswith(f"/s/{honest.tree}/"):
            body = files.get(path.split("/", 3)[3])
        if body is None:
            return httpx.Response(404, stream=httpx.ByteStream(b""), headers=headers)
        return httpx.Response(200, stream=httpx.ByteStream(body), headers=headers)

    client = httpx.Client(transport=httpx.MockTransport(answer))
    report = audit_page("http://hub.test", key.verifier, client=client)
    kinds = {(p.path, p.kind) for p in report.problems}
    assert ("/", "index_not_rendered") in kinds
    assert ("/", "unlisted") in kinds  # and the extra script is not a listed file


def test_the_page_ships_the_log_key_and_a_different_one_fails(tmp_path: Path, proxy: Any) -> None:
    web = web_with_log_key_meta(tmp_path / "web")
    hub = HubProcess(
        tmp_path / "data", f"sqlite:///{tmp_path / 'h.sqlite3'}", (*FAST, "--web-dir", str(web))
    ).start()
    try:
        key = _log_key(hub)
        with hub.client() as c:
            assert f'<meta name="ncii-log-key" content="{key}">'.encode() in c.get("/").content
        code, report = _audit("--hub", hub.url, "--log-key", key, "--source", str(web))
        assert code == 0, report
        other = generate_signer_key(key.split("+")[0]).verifier.encode()

        def swap(path: str, body: bytes) -> bytes:
            return body.replace(key.encode(), other.encode()) if path == "/" else body

        code, report = _audit("--hub", proxy(hub.url, swap), "--log-key", key)
        assert code == 1
        problems = {(p["path"], p["kind"]): p["message"] for p in report["problems"]}
        assert other in problems[("/", "log_key")] and "another log" in problems[("/", "log_key")]
    finally:
        hub.kill()


def test_a_signed_index_with_another_log_key_is_caught() -> None:
    """A hub that signs (with its real key) an index shipping another log's key: the index
    matches the manifest, but it is not the rewrite with the key the auditor was given."""
    import httpx

    from auditor.page import audit_page
    from crypto.note import sign_note
    from crypto.page import build_manifest, content_security_policy, encode_manifest

    files = {
        "index.html": b'<!doctype html><head><meta name="ncii-log-key" content=""></head><body>'
        b'<script type="module" src="a.js"></script></body>',
        "a.js": b"export const a = 1;\n",
    }
    key = generate_signer_key("evil.example/log")
    decoy = generate_signer_key("evil.example/log").verifier.encode()
    manifest, rendered = build_manifest("evil.example/log", files, decoy)
    note = sign_note(encode_manifest(manifest), [key])
    headers = {
        "Content-Security-Policy": content_security_policy(rendered.importmap_hash),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cache-Control": "no-cache, immutable",
    }

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body = {"/page/manifest": note, "/": rendered.body}.get(path)
        if body is None and path.startswith(f"/s/{manifest.tree}/"):
            body = files.get(path.split("/", 3)[3])
        if body is None:
            return httpx.Response(404, stream=httpx.ByteStream(b""), headers=headers)
        return httpx.Response(200, stream=httpx.ByteStream(body), headers=headers)

    client = httpx.Client(transport=httpx.MockTransport(answer))
    report = audit_page("http://hub.test", key.verifier, client=client)
    kinds = {(p.path, p.kind) for p in report.problems}
    assert kinds == {("/", "log_key"), ("/", "index_not_rendered")}
