"""The page manifest and the served index: pure functions shared by the hub and the auditor.

The hub serves web/ under ``/s/<tree>/<path>``, where ``tree`` names the whole file set
(:func:`tree_id`), and ``/`` as index.html rewritten by :func:`render_index` (absolute URLs,
Subresource Integrity, an import map whose ``integrity`` table covers every module). It signs
a manifest of every file (:func:`encode_manifest`) with the log key. ``ncii-audit page`` parses
it (:func:`parse_manifest`) and, given a source checkout, re-renders the index with the same
function, so the hub and the auditor cannot disagree on the rewrite. specs/page-manifest.md.

No I/O here: callers walk their own folders and hand in ``{path: bytes}``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Final

from crypto.errors import LimitExceededError, MalformedError

__all__ = [
    "INDEX_PATH",
    "LOG_KEY_META",
    "MANIFEST_KIND",
    "MAX_FILES",
    "MAX_PATH_BYTES",
    "PageFile",
    "PageManifest",
    "RenderedIndex",
    "build_manifest",
    "check_page_path",
    "content_security_policy",
    "content_type",
    "encode_manifest",
    "parse_manifest",
    "render_index",
    "skipped_entry",
    "sri",
    "static_url",
    "tree_id",
]

#: Second line of every page manifest: never a decimal, so never confused with a checkpoint
#: (whose second line is the tree size) although both are signed by the log key.
MANIFEST_KIND: Final = "ncii page manifest v1"
#: The file rendered as ``/``.
INDEX_PATH: Final = "index.html"
#: Most files in a page; more is a packaging mistake.
MAX_FILES: Final = 1000
#: Longest path (bytes).
MAX_PATH_BYTES: Final = 200
#: Hex characters of the tree hash used in URLs (128 bits).
TREE_ID_HEX: Final = 32
#: The ``<meta name=...>`` whose content the renderer fills with the log's verifier key.
LOG_KEY_META: Final = "ncii-log-key"
#: Longest log key written into the index (a verifier key string is about 100 bytes).
MAX_LOG_KEY_BYTES: Final = 512

_LOG_KEY_RE: Final = re.compile(r"[!-~]+")
_PREFIX_RE: Final = re.compile(r"/(?:[A-Za-z0-9_-]+/)*")

_PATH_RE: Final = re.compile(r"[A-Za-z0-9_@-][A-Za-z0-9._@-]*(?:/[A-Za-z0-9_@-][A-Za-z0-9._@-]*)*")
_HEX64: Final = re.compile(r"[0-9a-f]{64}")


def check_page_path(path: str) -> str:
    """A page path: relative, ``/``-separated, segments of ``[A-Za-z0-9._@-]`` not starting
    with a dot (no ``..``, no hidden files), at most :data:`MAX_PATH_BYTES`."""
    if not isinstance(path, str) or not _PATH_RE.fullmatch(path):
        raise MalformedError(f"page path {path[:80]!r} is not a plain relative path")
    if len(path.encode()) > MAX_PATH_BYTES:
        raise LimitExceededError(f"page path is longer than {MAX_PATH_BYTES} bytes")
    return path


@dataclass(frozen=True, slots=True)
class PageFile:
    """One served file: its path under web/ and the SHA-256 of its bytes."""

    path: str
    sha256: bytes


def tree_id(files: Mapping[str, bytes]) -> str:
    """The URL name of a file set ``{path: sha256}``: the first 32 hex digits of SHA-256 over
    the lines ``<sha256 hex> <path>\\n`` sorted by path. Any change to any file changes it,
    so everything under ``/s/<tree>/`` can be cached forever."""
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(files[path].hex().encode() + b" " + path.encode() + b"\n")
    return h.hexdigest()[:TREE_ID_HEX]


def static_url(tree: str, path: str, prefix: str = "/") -> str:
    """The content-addressed URL path of one file; ``prefix`` is where the page is mounted
    (``/`` on a hub, ``/<token>/`` under ``ncii-client ui``)."""
    return f"{prefix}s/{tree}/{path}"


def sri(data: bytes) -> str:
    """A Subresource Integrity value (``sha256-<base64>``) for ``data``."""
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def _sri_of_digest(digest: bytes) -> str:
    return "sha256-" + base64.b64encode(digest).decode()


#: File types a page serves (by suffix), and their Content-Type; anything else in web/ is left
#: out. Shared so the hub and ``ncii-audit page --source`` pick the same files.
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
#: Files without a suffix that are served: the licences of vendored code.
PLAIN_NAMES: Final = frozenset({"LICENSE"})
#: Folders of web/ never served: the Node tests, the vendoring script (top level only) ...
EXCLUDED_TOP: Final = frozenset({"test", "scripts"})
#: ... and npm's folder (anywhere). Names starting with a dot are never served either.
EXCLUDED_ANYWHERE: Final = frozenset({"node_modules"})


def content_type(path: str) -> str | None:
    """The Content-Type a page file is served with, or None if its type is not served."""
    name = path.rsplit("/", 1)[-1]
    if name in PLAIN_NAMES:
        return "text/plain; charset=utf-8"
    dot = name.rfind(".")
    return CONTENT_TYPES.get(name[dot:]) if dot > 0 else None


def skipped_entry(name: str, depth: int) -> bool:
    """Whether a folder entry named ``name`` at ``depth`` (0: web/ itself) is left out."""
    return (
        name.startswith(".") or name in EXCLUDED_ANYWHERE or (depth == 0 and name in EXCLUDED_TOP)
    )


# -- the index ------------------------------------------------------------------------------

#: Tags whose attribute loads a resource, and which attribute.
_LOADS: Final = {"script": "src", "link": "href", "img": "src", "source": "src", "video": "src"}
_SRI_TAGS: Final = frozenset({"script", "link"})
_JS_SUFFIXES: Final = (".js", ".mjs")
# The import map pins modules, and JSON too: the page fetches its message catalogues with
# the integrity it reads from this table, so a changed catalogue is refused like a module.
_PINNED_SUFFIXES: Final = (*_JS_SUFFIXES, ".json")


@dataclass(frozen=True, slots=True)
class RenderedIndex:
    """The bytes served at ``/`` and the hash source of its one inline element (the import
    map) that the Content-Security-Policy must allow."""

    body: bytes
    importmap_hash: str


class _Scan(HTMLParser):
    """Start tags with their byte spans, and what must be refused."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        # HTMLParser counts lines by "\n" only (not "\r" or U+2028 as str.splitlines does).
        starts = [0]
        for line in text.split("\n"):
            starts.append(starts[-1] + len(line) + 1)
        self._starts = starts
        self.tags: list[tuple[int, int, str, list[tuple[str, str | None]]]] = []
        self.problems: list[str] = []
        self._in_script = False

    def _offset(self) -> int:
        line, col = self.getpos()
        return self._starts[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raw = self.get_starttag_text() or ""
        start = self._offset()
        self.tags.append((start, start + len(raw), tag, attrs))
        names = {k for k, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("an inline <script> (the CSP forbids inline script)")
        if tag == "style":
            self.problems.append("an inline <style> (put it in a .css file)")
        if "style" in names:
            self.problems.append(f"a style attribute on <{tag}> (put it in a .css file)")
        if any(k.startswith("on") for k in names):
            self.problems.append(f"an event handler attribute on <{tag}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def _attrs_text(attrs: list[tuple[str, str | None]]) -> str:
    out = []
    for k, v in attrs:
        out.append(k if v is None else f'{k}="{html.escape(v, quote=True)}"')
    return " ".join(out)


def _check_log_key(log_key: str) -> str:
    if (
        not isinstance(log_key, str)
        or len(log_key.encode()) > MAX_LOG_KEY_BYTES
        or not _LOG_KEY_RE.fullmatch(log_key)
    ):
        raise MalformedError("the log key for the page must be one printable word (a vkey)")
    return log_key


def render_index(
    index: bytes,
    files: Mapping[str, bytes],
    tree: str,
    log_key: str | None = None,
    prefix: str = "/",
) -> RenderedIndex:
    """index.html as served at ``prefix``: every local reference in a loading tag becomes its
    ``<prefix>s/<tree>/`` URL, scripts and stylesheets get ``integrity``, a
    ``<meta http-equiv=Content-Security-Policy>`` is dropped (the header is the policy), the
    ``<meta name=ncii-log-key>`` (if any) gets ``log_key`` as its content, and an import map
    listing the integrity of every JavaScript and JSON file is inserted before the first script or
    link. ``files`` is ``{path: sha256}``. Inline script or style is refused."""
    try:
        text = index.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedError("index.html is not UTF-8") from None
    if not _PREFIX_RE.fullmatch(prefix):
        raise MalformedError("the page's prefix must be '/' or '/<segments>/'")
    if log_key is not None:
        _check_log_key(log_key)
    scan = _Scan(text)
    scan.feed(text)
    scan.close()
    if scan.problems:
        raise MalformedError("index.html has " + "; ".join(sorted(set(scan.problems))))
    key_metas = [t for t in scan.tags if t[2] == "meta" and dict(t[3]).get("name") == LOG_KEY_META]
    if len(key_metas) > 1:
        raise MalformedError(f'index.html has more than one <meta name="{LOG_KEY_META}">')
    integrity = {
        static_url(tree, p, prefix): _sri_of_digest(files[p])
        for p in sorted(files)
        if p.endswith(_PINNED_SUFFIXES)
    }
    importmap = json.dumps({"integrity": integrity}, indent=1, sort_keys=True)
    importmap_tag = f'<script type="importmap">{importmap}</script>\n'
    pieces: list[str] = []
    at = 0
    inserted = False
    for start, end, tag, attrs in scan.tags:
        pieces.append(text[at:start])
        at = end
        lowered = {k: (v or "") for k, v in attrs}
        if tag == "meta" and lowered.get("http-equiv", "").lower() == "content-security-policy":
            # Drop the tag and the line break after it.
            if text[at : at + 1] == "\n":
                at += 1
            continue
        if tag == "meta" and lowered.get("name") == LOG_KEY_META and log_key is not None:
            # The log key the page verifies checkpoints with: what the manifest's index
            # hash then covers (a hub cannot hand the page another key unnoticed).
            filled = [(k, v) for k, v in attrs if k != "content"] + [("content", log_key)]
            closing = "/>" if text[start:end].endswith("/>") else ">"
            pieces.append(f"<meta {_attrs_text(filled)}{closing}")
            continue
        if tag in ("script", "link") and not inserted:
            pieces.append(importmap_tag)
            inserted = True
        attr = _LOADS.get(tag)
        ref = lowered.get(attr, "") if attr else ""
        if not attr or not ref or ref.startswith(("blob:", "data:", "#")):
            pieces.append(text[start:end])
            continue
        path = ref[2:] if ref.startswith("./") else ref
        if path not in files:
            raise MalformedError(
                f"index.html <{tag}> loads {ref[:80]!r}, which is not a file of the page"
            )
        new_attrs = [(k, v) for k, v in attrs if k != "integrity"]
        new_attrs = [(k, static_url(tree, path, prefix) if k == attr else v) for k, v in new_attrs]
        if tag in _SRI_TAGS:
            new_attrs.append(("integrity", _sri_of_digest(files[path])))
        closing = "/>" if text[start:end].endswith("/>") else ">"
        pieces.append(f"<{tag} {_attrs_text(new_attrs)}{closing}")
    pieces.append(text[at:])
    out = "".join(pieces)
    if not inserted:
        head_end = out.lower().find("</head>")
        if head_end < 0:
            raise MalformedError("index.html has no </head>")
        out = out[:head_end] + importmap_tag + out[head_end:]
    digest = hashlib.sha256(importmap.encode()).digest()
    return RenderedIndex(out.encode(), "'sha256-" + base64.b64encode(digest).decode() + "'")


def content_security_policy(importmap_hash: str) -> str:
    """The policy of every page response: only this origin, no inline script but the import
    map (allowed by its hash), no plugins, no framing, no <base>."""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {importmap_hash}",
            "style-src 'self'",
            "img-src 'self' blob:",
            "media-src 'self' blob:",
            "connect-src 'self' blob:",
            "worker-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ]
    )


# -- the manifest ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageManifest:
    """What a hub claims it serves: the tree, the ``/`` bytes' hash and every file."""

    origin: str
    tree: str
    index_sha256: bytes
    files: tuple[PageFile, ...]

    def by_path(self) -> dict[str, bytes]:
        return {f.path: f.sha256 for f in self.files}

    def url(self, path: str) -> str:
        return static_url(self.tree, path)


def build_manifest(
    origin: str, contents: Mapping[str, bytes], log_key: str | None = None
) -> tuple[PageManifest, RenderedIndex]:
    """The manifest of a page given ``{path: file bytes}``, and the rendered ``/`` (whose
    ``ncii-log-key`` meta, if any, holds ``log_key``: the hub's verifier key).

    The one place the hub and ``ncii-audit page --source`` both turn a web/ folder into what
    a hub must serve. Raises MalformedError for a path, an index or a file set the rules
    refuse."""
    if len(contents) > MAX_FILES:
        raise LimitExceededError(f"a page holds at most {MAX_FILES} files")
    if INDEX_PATH not in contents:
        raise MalformedError("the page has no index.html")
    digests = {check_page_path(p): hashlib.sha256(b).digest() for p, b in contents.items()}
    tree = tree_id(digests)
    rendered = render_index(contents[INDEX_PATH], digests, tree, log_key)
    files = tuple(PageFile(p, digests[p]) for p in sorted(digests))
    manifest = PageManifest(origin, tree, hashlib.sha256(rendered.body).digest(), files)
    return manifest, rendered


def encode_manifest(manifest: PageManifest) -> bytes:
    """The note text (to be signed with the log key), specs/page-manifest.md."""
    lines = [
        manifest.origin,
        MANIFEST_KIND,
        f"tree {manifest.tree}",
        f"index {manifest.index_sha256.hex()} /",
    ]
    lines += [
        f"file {f.sha256.hex()} {manifest.url(f.path)} {f.path}"
        for f in sorted(manifest.files, key=lambda f: f.path)
    ]
    return ("\n".join(lines) + "\n").encode()


def parse_manifest(text: bytes, origin: str | None = None) -> PageManifest:
    """Parse a manifest's note text (already verified: crypto.note.open_note). Every rule of
    specs/page-manifest.md is checked; ``origin``, if given, must be the first line."""
    try:
        lines = text.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise MalformedError("the page manifest is not UTF-8") from None
    if len(lines) < 5 or lines[-1] != "":
        raise MalformedError("the page manifest is too short or does not end in a newline")
    lines.pop()
    first, kind, tree_line, index_line, *file_lines = lines
    if origin is not None and first != origin:
        raise MalformedError(f"the page manifest is for {first[:80]!r}, not {origin!r}")
    if kind != MANIFEST_KIND:
        raise MalformedError(f"the second line is not {MANIFEST_KIND!r}: not a page manifest")
    m = re.fullmatch(r"tree ([0-9a-f]{32})", tree_line)
    if m is None:
        raise MalformedError("the third line must be 'tree <32 hex>'")
    tree = m.group(1)
    m = re.fullmatch(r"index ([0-9a-f]{64}) /", index_line)
    if m is None:
        raise MalformedError("the fourth line must be 'index <64 hex> /'")
    index_sha = bytes.fromhex(m.group(1))
    if len(file_lines) > MAX_FILES:
        raise LimitExceededError(f"a page manifest lists at most {MAX_FILES} files")
    files: list[PageFile] = []
    previous = ""
    for n, line in enumerate(file_lines, start=5):
        parts = line.split(" ")
        if len(parts) != 4 or parts[0] != "file" or not _HEX64.fullmatch(parts[1]):
            raise MalformedError(f"line {n}: expected 'file <64 hex> <url> <path>'")
        path = check_page_path(parts[3])
        if parts[2] != static_url(tree, path):
            raise MalformedError(f"line {n}: the URL of {path} must be {static_url(tree, path)}")
        if files and path <= previous:
            raise MalformedError(f"line {n}: files must be sorted by path, each once")
        previous = path
        files.append(PageFile(path, bytes.fromhex(parts[1])))
    by_path = {f.path: f.sha256 for f in files}
    if INDEX_PATH not in by_path:
        raise MalformedError("the page manifest lists no index.html")
    if tree_id(by_path) != tree:
        raise MalformedError("the tree line does not match the files listed")
    return PageManifest(first, tree, index_sha, tuple(files))
