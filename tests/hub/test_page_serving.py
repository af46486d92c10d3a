"""The hub serves web/ at / (specs/page-manifest.md, specs/hub-api.md section 11), over HTTP.

One hub process for the module, on SQLite: the page is read from web/ at start-up and never
touches the database, so running these on PostgreSQL too would test nothing more.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hubkit import PROJECT_ROOT, HubProcess, verifier_of

from crypto.note import open_note
from crypto.page import PageManifest, parse_manifest, sri
from hub.page import PageError, read_web_dir

WEB = PROJECT_ROOT / "web"
SECURITY = {
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    tmp = tmp_path_factory.mktemp("pagehub")
    proc = HubProcess(tmp / "data", f"sqlite:///{tmp / 'hub.sqlite3'}").start()
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def manifest(hub: HubProcess) -> PageManifest:
    with hub.client() as c:
        key, origin = verifier_of(c)
        note = c.get("/page/manifest").content
    return parse_manifest(open_note(note, [key]).text, origin=origin)


def _check_security_headers(r: httpx.Response) -> None:
    for name, value in SECURITY.items():
        assert r.headers.get(name) == value, (r.url, name)
    assert "set-cookie" not in r.headers
    csp = r.headers["content-security-policy"]
    for directive in (
        "default-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ):
        assert directive in csp.split("; "), (r.url, directive)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp


def test_manifest_lists_web_without_tests_scripts_or_docs(manifest: PageManifest) -> None:
    paths = set(manifest.by_path())
    assert {"index.html", "app.js", "fingerprint-worker.js", "page.css"} <= paths
    assert {"vendor/@noble/hashes/sha2.js", "vendor/@noble/hashes/LICENSE"} <= paths
    assert not any(p.startswith(("test/", "scripts/", "node_modules/")) for p in paths)
    assert "README.md" not in paths and ".gitignore" not in paths
    for f in manifest.files:
        assert hashlib.sha256((WEB / f.path).read_bytes()).digest() == f.sha256


def test_headers_on_every_page_response(hub: HubProcess, manifest: PageManifest) -> None:
    with hub.client() as c:
        urls = ["/", "/page/manifest", f"/s/{manifest.tree}/nope.js", "/s/0/index.html"]
        urls += [manifest.url(f.path) for f in manifest.files]
        for url in urls:
            _check_security_headers(c.get(url))


def test_content_addressed_files_are_immutable_and_exact(
    hub: HubProcess, manifest: PageManifest
) -> None:
    with hub.client() as c:
        for f in manifest.files:
            r = c.get(manifest.url(f.path))
            assert r.status_code == 200
            assert r.content == (WEB / f.path).read_bytes()
            assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert c.get(manifest.url("app.js")).headers["content-type"].startswith("text/javascript")
        assert c.get(manifest.url("page.css")).headers["content-type"].startswith("text/css")
        index = c.get("/")
        assert index.headers["cache-control"] == "no-cache"
        assert hashlib.sha256(index.content).digest() == manifest.index_sha256


def test_every_script_and_style_carries_correct_integrity(
    hub: HubProcess, manifest: PageManifest
) -> None:
    with hub.client() as c:
        r = c.get("/")
        html = r.text
        tags = re.findall(r'<(script|link) ([^>]*)(?:src|href)="([^"]+)" integrity="([^"]+)"', html)
        assert {t[2] for t in tags} == {manifest.url("app.js"), manifest.url("page.css")}
        for _tag, _rest, url, integrity in tags:
            assert integrity == sri(c.get(url).content)
        # Every module, the ones imported statically included, is pinned by the import map,
        # itself the one inline element, allowed by its hash in the policy.
        body = re.search(r'<script type="importmap">(.*?)</script>', html, re.S)
        assert body is not None
        table = json.loads(body.group(1))["integrity"]
        pinned = {manifest.url(f.path) for f in manifest.files if f.path.endswith((".js", ".json"))}
        assert set(table) == pinned
        assert manifest.url("locales/ur.json") in table  # catalogues are fetched with it
        for url, value in table.items():
            assert value == sri(c.get(url).content)
        digest = sri(body.group(1).encode())
        assert f"'{digest}'" in r.headers["content-security-policy"]
        assert "http-equiv" not in html  # the header is the policy
        assert 'src="app.js"' not in html
        # The log key the page checks receipts with is the hub's, covered by the manifest.
        key, _ = verifier_of(c)
        assert f'<meta name="ncii-log-key" content="{key.encode()}">' in html


@pytest.mark.parametrize(
    "path",
    [
        "/s/{tree}/../../pyproject.toml",
        "/s/{tree}/%2e%2e/%2e%2e/pyproject.toml",
        "/s/{tree}/..%2f..%2fpyproject.toml",
        "/s/{tree}/test/pdq.test.mjs",
        "/s/{tree}/scripts/vendor.mjs",
        "/s/{tree}/README.md",
        "/s/{tree}/.gitignore",
        "/s/{tree}//etc/passwd",
        "/s/{tree}/vendor/../../hub/app.py",
        "/s/0000/index.html",
        "/s/{tree}/",
        "/s/{tree}/nothing.js",
        "/index.html",
        "/app.js",
    ],
)
def test_traversal_and_unknown_paths_are_404(
    hub: HubProcess, manifest: PageManifest, path: str
) -> None:
    # http.client sends the path as written (httpx would remove the dot segments).
    conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=10)
    try:
        conn.request("GET", path.format(tree=manifest.tree))
        r = conn.getresponse()
        body = r.read()
    finally:
        conn.close()
    assert r.status == 404
    assert json.loads(body)["error"]["code"] == "not_found"


def test_start_up_refuses_a_symbolic_link_and_bounds_the_walk(tmp_path: Path) -> None:
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><head></head>")
    (web / "test").mkdir()
    (web / "test" / "x.js").write_text("secret")
    (web / "node_modules").mkdir()
    (web / "node_modules" / "y.js").write_text("secret")
    (web / "notes.md").write_text("skipped")
    assert set(read_web_dir(web)) == {"index.html"}
    (web / "outside.js").symlink_to(PROJECT_ROOT / "pyproject.toml")
    with pytest.raises(PageError, match="symbolic link"):
        read_web_dir(web)


def test_hub_refuses_to_start_on_a_page_with_inline_script(tmp_path: Path) -> None:
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><head><script>alert(1)</script></head>")
    proc = HubProcess(
        tmp_path / "data", f"sqlite:///{tmp_path / 'h.sqlite3'}", ("--web-dir", str(web))
    )
    with pytest.raises(RuntimeError, match="inline <script>"):
        proc.start(timeout=20)
    assert proc.proc is not None and proc.proc.wait(10) == 2
