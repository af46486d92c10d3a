"""``ncii-audit page``: check that a hub serves exactly the page its signed manifest lists.

Steps (specs/page-manifest.md section 3): fetch ``/page/manifest`` and verify it with the log
key; fetch ``/`` and every listed file at its content-addressed URL and compare every byte's
SHA-256; follow what the page loads (the index's tags, its import map, and the static imports,
dynamic imports and Worker URLs of every module, transitively, bounded) and require each to be
a listed file of this origin; check the security headers of every response; with a source
checkout, rebuild the manifest with crypto.page (the code the hub uses) and compare.

The folder walk below mirrors hub/page.py's (same rules, from crypto.page): a few lines are
duplicated on purpose, since the auditor never imports the hub.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
import urllib.parse
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Final

import httpx

from auditor.errors import ConfigError, FetchError
from auditor.source import describe_transport
from crypto.errors import MalformedError, VerificationError
from crypto.keys import VerifierKey
from crypto.note import open_note
from crypto.page import (
    INDEX_PATH,
    LOG_KEY_META,
    MAX_FILES,
    PageManifest,
    build_manifest,
    content_type,
    encode_manifest,
    parse_manifest,
    skipped_entry,
    sri,
)
from crypto.urlredact import redact_url, redact_urls

__all__ = ["PageProblem", "PageReport", "audit_page", "read_source"]

MANIFEST_PATH: Final = "/page/manifest"
MAX_MANIFEST_BYTES: Final = 1 << 20
MAX_FILE_BYTES: Final = 16 << 20
MAX_SOURCE_BYTES: Final = 64 << 20
MAX_FETCHES: Final = 2 * MAX_FILES
FETCH_DEADLINE: Final = 60.0

#: Directives the page's policy must hold exactly as written.
REQUIRED_CSP: Final = {
    "default-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
    "worker-src": ["'self'"],
}
#: Source expressions allowed anywhere in the policy: this origin, blob: URLs the page made
#: itself (pictures, videos), and hashes of inline elements (the import map).
_ALLOWED_SOURCE: Final = re.compile(r"'self'|'none'|blob:|'sha(256|384|512)-[A-Za-z0-9+/=]+'")


@dataclass
class PageProblem:
    """One difference: which file (or URL), what kind, and a sentence."""

    path: str
    kind: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "kind": self.kind, "message": self.message}


@dataclass
class PageReport:
    """What was checked and every difference found."""

    hub: str
    tree: str = ""
    files_checked: int = 0
    loads_followed: int = 0
    source_compared: bool = False
    problems: list[PageProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, path: str, kind: str, message: str) -> None:
        self.problems.append(PageProblem(path, kind, message))

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "alert",
            "hub": self.hub,
            "tree": self.tree,
            "files_checked": self.files_checked,
            "loads_followed": self.loads_followed,
            "source_compared": self.source_compared,
            "problems": [p.to_json() for p in self.problems],
        }


@dataclass(frozen=True)
class _Fetched:
    status: int
    headers: httpx.Headers
    body: bytes


def _fetch(client: httpx.Client, url: str, cap: int) -> _Fetched:
    """GET without redirects, reading at most ``cap`` bytes (identity encoding only)."""
    started = time.monotonic()
    try:
        with client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response:
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise FetchError(
                    f"{redact_url(url)}: compressed answer although none was asked for"
                )
            chunks: list[bytes] = []
            total = 0
            for chunk in response.iter_raw():
                total += len(chunk)
                if total > cap:
                    raise FetchError(f"{redact_url(url)}: more than {cap} bytes; not a page file")
                if time.monotonic() - started > FETCH_DEADLINE:
                    raise FetchError(f"{redact_url(url)}: took longer than {FETCH_DEADLINE:.0f} s")
                chunks.append(chunk)
            return _Fetched(response.status_code, response.headers, b"".join(chunks))
    except httpx.TransportError as exc:
        raise FetchError(f"{redact_url(url)}: {describe_transport(exc)}") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"{redact_url(url)}: {redact_urls(str(exc))}") from exc


# -- headers --------------------------------------------------------------------------------


def parse_csp(value: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header as ``{directive: [sources]}`` (first one wins)."""
    out: dict[str, list[str]] = {}
    for part in value.split(";"):
        words = part.split()
        if words and words[0].lower() not in out:
            out[words[0].lower()] = words[1:]
    return out


def check_headers(report: PageReport, path: str, headers: httpx.Headers, cache: str) -> None:
    """The headers every page response must carry (specs/page-manifest.md section 3)."""
    if "set-cookie" in headers:
        report.add(path, "cookie", "the response sets a cookie; the page must never set one")
    if headers.get("referrer-policy", "").strip().lower() != "no-referrer":
        report.add(path, "header", "Referrer-Policy is not no-referrer")
    if headers.get("x-content-type-options", "").strip().lower() != "nosniff":
        report.add(path, "header", "X-Content-Type-Options is not nosniff")
    if not headers.get("cross-origin-opener-policy", "").strip():
        report.add(path, "header", "no Cross-Origin-Opener-Policy")
    if cache == "immutable" and "immutable" not in headers.get("cache-control", ""):
        report.add(path, "header", "a content-addressed file is not served as immutable")
    if cache == "revalidate":
        value = headers.get("cache-control", "").lower()
        if "no-cache" not in value and "no-store" not in value:
            report.add(path, "header", "/ may be cached without revalidation")
    csp_values = headers.get_list("content-security-policy")
    if len(csp_values) != 1:
        report.add(path, "csp", "there must be exactly one Content-Security-Policy header")
        return
    csp = parse_csp(csp_values[0])
    for name, want in REQUIRED_CSP.items():
        if csp.get(name) != want:
            report.add(path, "csp", f"the policy's {name} is not {' '.join(want)}")
    for name, sources in csp.items():
        for source in sources:
            if not _ALLOWED_SOURCE.fullmatch(source):
                report.add(
                    path, "csp", f"the policy's {name} allows {source[:60]!r} (only this origin)"
                )
    if "'unsafe-inline'" in csp.get("script-src", []) or "'unsafe-eval'" in csp.get(
        "script-src", []
    ):
        report.add(path, "csp", "the policy allows inline script or eval")


# -- what the page loads --------------------------------------------------------------------

_LOAD_ATTRS: Final = {
    "script": "src",
    "link": "href",
    "img": "src",
    "source": "src",
    "video": "src",
    "audio": "src",
    "iframe": "src",
    "embed": "src",
    "object": "data",
    "track": "src",
}


class _IndexScan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loads: list[tuple[str, str, str | None]] = []  # (tag, url, integrity)
        self.importmap: list[str] = []
        self.inline_scripts = 0
        self.log_keys: list[str] = []
        self._in_importmap = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "meta" and a.get("name") == LOG_KEY_META:
            self.log_keys.append(a.get("content", ""))
        attr = _LOAD_ATTRS.get(tag)
        if attr and a.get(attr):
            self.loads.append((tag, a[attr], a.get("integrity")))
        if tag == "script" and "src" not in a:
            if a.get("type") == "importmap":
                self._in_importmap = True
            else:
                self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_importmap = False

    def handle_data(self, data: str) -> None:
        if self._in_importmap:
            self.importmap.append(data)


# Strings and comments, to skip comments in one linear pass (regular-expression literals are
# not recognised: a quote inside one may hide the rest of its line from the scan).
_TOKEN: Final = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`|/\*|//")
_JS_REFS: Final = [
    re.compile(
        r"(?:^|[;}])[ \t]*(?:import|export)\b[^;'\"]{0,4000}?\bfrom\s*[\"']([^\"']+)[\"']", re.M
    ),
    re.compile(r"(?:^|[;}])[ \t]*import\s*[\"']([^\"']+)[\"']", re.M),
    re.compile(r"\bimport\(\s*[\"']([^\"']+)[\"']\s*\)"),
    re.compile(r"\bnew\s+URL\(\s*[\"']([^\"']+)[\"']\s*,\s*import\.meta\.url"),
    re.compile(r"\bnew\s+(?:Shared)?Worker\(\s*[\"']([^\"']+)[\"']"),
    re.compile(r"\bimportScripts\(\s*[\"']([^\"']+)[\"']"),
]


def _strip_comments(text: str) -> str:
    """``text`` without its ``//`` and ``/* */`` comments (strings kept), in linear time."""
    out: list[str] = []
    at = 0
    while True:
        m = _TOKEN.search(text, at)
        if m is None:
            out.append(text[at:])
            return "".join(out)
        lexeme = m.group(0)
        if lexeme == "/*":
            out.append(text[at : m.start()])
            end = text.find("*/", m.end())
            at = len(text) if end < 0 else end + 2
        elif lexeme == "//":
            out.append(text[at : m.start()])
            end = text.find("\n", m.end())
            at = len(text) if end < 0 else end
        else:
            out.append(text[at : m.end()])
            at = m.end()


def js_references(source: bytes) -> list[str]:
    """Module specifiers and URLs a script loads: static and dynamic imports, re-exports,
    ``new URL(x, import.meta.url)`` and Worker URLs (string literals only; comments skipped).
    A computed specifier is not seen: the policy's 'self' still bounds where it can load from."""
    text = _strip_comments(source.decode("utf-8", errors="replace"))
    out: list[str] = []
    for pattern in _JS_REFS:
        out += pattern.findall(text)
    return out


# -- the audit ------------------------------------------------------------------------------


def read_source(folder: Path) -> dict[str, bytes]:
    """A checkout's web/ as ``{path: bytes}``, with the hub's rules (crypto.page); ``folder``
    is the checkout (its web/ is used) or web/ itself."""
    root = folder / "web" if (folder / "web" / INDEX_PATH).is_file() else folder
    if not (root / INDEX_PATH).is_file():
        raise ConfigError(f"{folder} holds no web/index.html; give a checkout of the project")
    out: dict[str, bytes] = {}
    total = 0

    def walk(directory: Path, rel: str, depth: int) -> None:
        nonlocal total
        if depth > 8:
            raise ConfigError(f"{directory} is more than 8 folders deep")
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if skipped_entry(entry.name, depth):
                continue
            st = entry.stat(follow_symlinks=False)
            path = rel + entry.name
            if stat.S_ISDIR(st.st_mode):
                walk(Path(entry.path), path + "/", depth + 1)
            elif stat.S_ISREG(st.st_mode) and content_type(path) is not None:
                if st.st_size > MAX_FILE_BYTES or len(out) >= MAX_FILES:
                    raise ConfigError(f"{root}: too large to be a page ({path})")
                total += st.st_size
                if total > MAX_SOURCE_BYTES:
                    raise ConfigError(f"{root}: more than {MAX_SOURCE_BYTES} bytes of page files")
                out[path] = Path(entry.path).read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                raise ConfigError(f"{root}/{path} is a symbolic link; the hub would refuse it")

    walk(root, "", 0)
    return out


def _verify_manifest(note: bytes, key: VerifierKey) -> PageManifest:
    opened = open_note(note, [key], max_size=MAX_MANIFEST_BYTES)
    return parse_manifest(opened.text, origin=key.name)


def audit_page(
    hub: str,
    key: VerifierKey,
    source: dict[str, bytes] | None = None,
    client: httpx.Client | None = None,
) -> PageReport:
    """Check the page ``hub`` serves; FetchError when the hub cannot be reached at all."""
    base = hub.rstrip("/")
    origin = urllib.parse.urlsplit(base + "/")
    own = (origin.scheme, origin.netloc)
    report = PageReport(hub=base)
    http = client or httpx.Client(timeout=30.0, follow_redirects=False)
    try:
        _audit(http, base, own, key, source, report)
    finally:
        if client is None:
            http.close()
    return report


def _audit(
    http: httpx.Client,
    base: str,
    own: tuple[str, str],
    key: VerifierKey,
    source: dict[str, bytes] | None,
    report: PageReport,
) -> None:
    got = _fetch(http, base + MANIFEST_PATH, MAX_MANIFEST_BYTES)
    if got.status != 200:
        raise FetchError(f"{base}{MANIFEST_PATH}: HTTP {got.status}; does this hub serve a page?")
    check_headers(report, MANIFEST_PATH, got.headers, "revalidate")
    try:
        manifest = _verify_manifest(got.body, key)
    except (MalformedError, VerificationError) as exc:
        report.add(MANIFEST_PATH, "bad_signature", f"the page manifest does not verify: {exc}")
        return
    report.tree = manifest.tree
    by_url = {manifest.url(f.path): f for f in manifest.files}

    # Every listed file, byte for byte.
    bodies: dict[str, bytes] = {}
    for f in manifest.files:
        url = manifest.url(f.path)
        got = _fetch(http, base + url, MAX_FILE_BYTES)
        report.files_checked += 1
        if got.status != 200:
            report.add(f.path, "missing", f"{redact_url(url)} answered HTTP {got.status}")
            continue
        check_headers(report, f.path, got.headers, "immutable")
        if hashlib.sha256(got.body).digest() != f.sha256:
            report.add(
                f.path, "modified", f"{redact_url(url)} is not the file the signed manifest lists"
            )
        bodies[url] = got.body

    # The index, as served at /.
    got = _fetch(http, base + "/", MAX_FILE_BYTES)
    if got.status != 200:
        report.add("/", "missing", f"/ answered HTTP {got.status}")
        return
    check_headers(report, "/", got.headers, "revalidate")
    index = got.body
    if hashlib.sha256(index).digest() != manifest.index_sha256:
        report.add("/", "modified", "/ is not the index the signed manifest lists")
    _follow(report, own, base, index, bodies, by_url, key.encode())
    _check_rendering(report, manifest, bodies, key.encode())

    if source is not None:
        _compare_source(report, manifest, source, key.encode())


def _local(
    report: PageReport, own: tuple[str, str], page_url: str, ref: str, by: str
) -> str | None:
    """The path of ``ref`` (relative to ``page_url``) on this origin, or None after a problem."""
    if ref.startswith(("blob:", "data:", "#")):
        return None
    if not ref.startswith(("/", "./", "../")) and "://" not in ref:
        report.add(by, "unresolvable", f"loads the bare specifier {ref[:80]!r}")
        return None
    resolved = urllib.parse.urljoin(page_url, ref)
    parts = urllib.parse.urlsplit(resolved)
    if (parts.scheme, parts.netloc) != own:
        report.add(by, "third_party", f"loads {ref[:80]!r} from another origin")
        return None
    return parts.path


def _follow(
    report: PageReport,
    own: tuple[str, str],
    base: str,
    index: bytes,
    bodies: dict[str, bytes],
    by_url: dict[str, Any],
    log_key: str,
) -> None:
    scan = _IndexScan()
    scan.feed(index.decode("utf-8", errors="replace"))
    scan.close()
    if scan.inline_scripts:
        report.add("/", "inline_script", "the index holds inline script")
    # The page checks receipts against this key: another one would let the hub show the
    # person receipts from a log nobody audits.
    if len(scan.log_keys) > 1:
        report.add("/", "log_key", f'/ holds more than one <meta name="{LOG_KEY_META}">')
    elif scan.log_keys and scan.log_keys[0] != log_key:
        report.add(
            "/",
            "log_key",
            f"the page ships the log key {scan.log_keys[0][:120]!r}, not the --log-key "
            "given; its receipts would be checked against another log",
        )
    root = base + "/"
    queue: list[tuple[str, str]] = []  # (url path, who loads it)
    for tag, ref, integrity in scan.loads:
        path = _local(report, own, root, ref, "/")
        if path is None:
            continue
        if tag in ("script", "link"):
            body = bodies.get(path)
            if integrity is None:
                report.add("/", "sri", f"<{tag}> {path} carries no integrity")
            elif body is not None and integrity != sri(body):
                name = by_url[path].path if path in by_url else path
                report.add(name, "sri", f"the file does not match its <{tag}> integrity in /")
        queue.append((path, "/"))
    if scan.importmap:
        try:
            table = json.loads("".join(scan.importmap)).get("integrity", {})
        except (ValueError, AttributeError):
            report.add("/", "importmap", "the import map is not valid JSON")
            table = {}
        for url, value in table.items() if isinstance(table, dict) else []:
            body = bodies.get(url)
            if body is None:
                report.add("/", "importmap", f"the import map names {url[:80]!r}, not listed")
            elif value != sri(body):
                name = by_url[url].path if url in by_url else url
                report.add(name, "sri", "the file does not match the import map's integrity")
    seen: set[str] = set()
    while queue:
        path, by = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        report.loads_followed += 1
        if len(seen) > MAX_FETCHES:
            report.add(by, "too_many", "the page loads more files than any page may hold")
            return
        f = by_url.get(path)
        if f is None:
            report.add(by, "unlisted", f"loads {path[:80]!r}, which the signed manifest omits")
            continue
        if path.endswith((".js", ".mjs")) and path in bodies:
            for ref in js_references(bodies[path]):
                target = _local(report, own, base + path, ref, f.path)
                if target is not None:
                    queue.append((target, f.path))


def _check_rendering(
    report: PageReport, manifest: PageManifest, bodies: dict[str, bytes], log_key: str
) -> None:
    """/ must be the standard rewrite of the listed index.html (specs/page-manifest.md 2.3)
    with the given log key, so a hub cannot sign one index.html and serve another page (or
    another key) at / even without --source."""
    if any(p.kind in ("missing", "modified") for p in report.problems if p.path != "/"):
        return  # already reported, by file
    try:
        rebuilt, _ = build_manifest(
            manifest.origin,
            {f.path: bodies[manifest.url(f.path)] for f in manifest.files},
            log_key,
        )
    except MalformedError as exc:
        report.add(INDEX_PATH, "index_not_rendered", f"the listed files cannot be a page: {exc}")
        return
    if rebuilt.index_sha256 != manifest.index_sha256:
        report.add("/", "index_not_rendered", "/ is not the rewrite of the listed index.html")


def _compare_source(
    report: PageReport, manifest: PageManifest, source: dict[str, bytes], log_key: str
) -> None:
    report.source_compared = True
    try:
        built, _ = build_manifest(manifest.origin, source, log_key)
    except MalformedError as exc:
        report.add("--source", "source", f"the source's web/ cannot be built: {exc}")
        return
    ours, theirs = built.by_path(), manifest.by_path()
    for path in sorted(set(ours) | set(theirs)):
        if path not in theirs:
            report.add(path, "source_only", "in the source but not in the hub's manifest")
        elif path not in ours:
            report.add(path, "hub_only", "in the hub's manifest but not in the source")
        elif ours[path] != theirs[path]:
            report.add(path, "differs_from_source", "the hub's file differs from the source's")
    if built.index_sha256 != manifest.index_sha256 and ours == theirs:
        report.add("/", "differs_from_source", "the hub's / is not the index the source renders")
    if encode_manifest(built) != encode_manifest(manifest) and not report.problems:
        report.add(MANIFEST_PATH, "differs_from_source", "the manifest differs from the source's")
