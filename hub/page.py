"""The person's page: web/ served at ``/``, content-addressed, with a signed manifest.

The file set is read once at start-up from the web/ folder shipped with the package (or
``Settings.web_dir``), kept in memory, and served only from there: a request path is a key in
a dict, never a file name, so nothing outside web/ can be reached. The manifest and the
rewritten index come from crypto.page, which ``ncii-audit page`` uses too.
specs/page-manifest.md, specs/hub-api.md section 11.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from starlette.responses import Response

from crypto.errors import MalformedError
from crypto.keys import SignerKey
from crypto.note import sign_note
from crypto.page import (
    MAX_FILES,
    PageManifest,
    build_manifest,
    check_page_path,
    content_security_policy,
    content_type,
    encode_manifest,
    skipped_entry,
)
from hub.errors import error_response

__all__ = ["MANIFEST_PATH", "PageError", "PageSite", "default_web_dir", "load_page", "page_router"]

MANIFEST_PATH: Final = "/page/manifest"

MAX_FILE_BYTES: Final = 16 << 20
MAX_TOTAL_BYTES: Final = 64 << 20
MAX_DEPTH: Final = 8

IMMUTABLE: Final = "public, max-age=31536000, immutable"


class PageError(ValueError):
    """web/ cannot be served as it is; the message names the file and what to change."""


def default_web_dir() -> Path:
    """The web/ folder of this installation: the ``ncii_web`` data package of a wheel, else
    the web/ next to hub/ in a source checkout."""
    spec = importlib.util.find_spec("ncii_web")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[1] / "web"


def read_web_dir(root: Path) -> dict[str, bytes]:
    """Every servable file under ``root`` as ``{relative path: bytes}``, bounded; a symbolic
    link or a special file anywhere in it refuses the whole folder."""
    if not root.is_dir():
        raise PageError(f"{root} is not a folder; give --web-dir the web/ folder of a checkout")
    out: dict[str, bytes] = {}
    total = 0

    def walk(folder: Path, rel: str, depth: int) -> None:
        nonlocal total
        if depth > MAX_DEPTH:
            raise PageError(f"{folder} is more than {MAX_DEPTH} folders deep")
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            name = entry.name
            path = f"{rel}{name}"
            if skipped_entry(name, depth):
                continue
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise PageError(f"web/{path} is a symbolic link; the hub serves regular files only")
            if stat.S_ISDIR(st.st_mode):
                walk(Path(entry.path), path + "/", depth + 1)
                continue
            if not stat.S_ISREG(st.st_mode):
                raise PageError(f"web/{path} is not a regular file")
            if content_type(path) is None:
                continue
            try:
                check_page_path(path)
            except MalformedError as exc:
                raise PageError(f"web/{path}: {exc}") from None
            if st.st_size > MAX_FILE_BYTES:
                raise PageError(f"web/{path} is larger than {MAX_FILE_BYTES} bytes")
            if len(out) >= MAX_FILES:
                raise PageError(f"web/ holds more than {MAX_FILES} servable files")
            fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                raise PageError(f"web/{path} is larger than {MAX_FILE_BYTES} bytes")
            total += len(data)
            if total > MAX_TOTAL_BYTES:
                raise PageError(f"web/ holds more than {MAX_TOTAL_BYTES} bytes of servable files")
            out[path] = data

    walk(root, "", 0)
    return out


@dataclass(frozen=True, slots=True)
class PageSite:
    """What the hub serves: the rewritten index, the files by path, the signed manifest."""

    manifest: PageManifest
    index: bytes
    files: dict[str, bytes]
    note: bytes
    csp: str
    # gzip of the index and of each file, where it is smaller (made once, at start-up)
    gzipped: dict[str, bytes]

    def headers(self, cache: str) -> dict[str, str]:
        """The security headers of every page response."""
        return {
            "Cache-Control": cache,
            "Content-Security-Policy": self.csp,
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Cross-Origin-Opener-Policy": "same-origin",
            "Cross-Origin-Resource-Policy": "same-origin",
            "X-Frame-Options": "DENY",
            "Vary": "Accept-Encoding",
        }

    def body(self, request: Request, key: str, data: bytes, kind: str, cache: str) -> Response:
        """``data`` as is, or gzipped to a client that accepts gzip. The page holds no secret,
        so compressing it leaks nothing (unlike an answer mixing a secret with input)."""
        headers = self.headers(cache)
        packed = self.gzipped.get(key)
        if packed is not None and accepts_gzip(request.headers.get("accept-encoding", "")):
            headers["Content-Encoding"] = "gzip"
            data = packed
        return Response(data, media_type=kind, headers=headers)


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding value admits gzip (RFC 9110 12.5.3: ``gzip;q=0`` refuses)."""
    for item in header.split(",")[:32]:
        name, *params = item.split(";")[:8]
        if name.strip().lower() not in ("gzip", "x-gzip"):
            continue
        for param in params:  # the weight may follow other parameters
            q = param.strip().lower()
            if q.startswith("q="):
                try:
                    return float(q[2:7]) > 0
                except ValueError:
                    return False
        return True
    return False


def _gzipped(data: bytes) -> bytes | None:
    """Deterministic gzip (no time stamp), or None where it saves under a tenth."""
    packed = gzip.compress(data, 9, mtime=0)
    return packed if len(packed) < len(data) * 0.9 else None


def load_page(root: Path, origin: str, signer: SignerKey) -> PageSite:
    """Read ``root`` once and build everything served (start-up only). The index's
    ``ncii-log-key`` meta is filled with the log's verifier key, so the page verifies
    checkpoints with the key whose signature covers the page itself."""
    contents = read_web_dir(root)
    try:
        manifest, index = build_manifest(origin, contents, signer.verifier.encode())
    except MalformedError as exc:
        raise PageError(f"web/ cannot be served: {exc}") from None
    note = sign_note(encode_manifest(manifest), [signer])
    csp = content_security_policy(index.importmap_hash)
    packed = {path: _gzipped(data) for path, data in [("", index.body), *contents.items()]}
    gzipped = {path: data for path, data in packed.items() if data is not None}
    return PageSite(manifest, index.body, contents, note, csp, gzipped)


def page_router(site: PageSite) -> APIRouter:
    """``/``, ``/s/<tree>/<path>`` and ``/page/manifest``."""
    router = APIRouter(tags=["page"])
    tree = site.manifest.tree

    def not_found() -> Response:
        return error_response(
            404,
            "not_found",
            "no such file in this hub's page; load / for the current one",
            site.headers("no-store"),
        )

    @router.get(
        "/",
        response_class=Response,
        summary="The person's page (index.html)",
    )
    def index(request: Request) -> Response:
        return site.body(request, "", site.index, "text/html; charset=utf-8", "no-cache")

    @router.get(
        "/s/{name}/{path:path}",
        response_class=Response,
        summary="A file of the page under its content-addressed URL (cached forever)",
    )
    def static(request: Request, name: str, path: str) -> Response:
        data = site.files.get(path) if name == tree else None
        kind = content_type(path)
        if data is None or kind is None or not path:
            return not_found()
        return site.body(request, path, data, kind, IMMUTABLE)

    @router.get(
        MANIFEST_PATH,
        response_class=Response,
        summary="The page's files and their SHA-256, signed with the log key",
    )
    def manifest() -> Response:
        return Response(
            site.note, media_type="text/plain; charset=utf-8", headers=site.headers("no-cache")
        )

    return router
