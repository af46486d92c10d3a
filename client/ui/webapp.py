"""The person's page (web/) as ``ncii-client ui`` serves it: read once, rendered under the token.

The same files the hub serves at ``/`` (one person-facing page, not two): the ``ncii_web``
data package of an installation, or web/ next to client/ in a checkout. The index is rendered
by crypto.page, as on the hub, but mounted at ``/<token>/`` and with the log key this computer
pinned for the hub, so the page checks its receipts against the key the CLI trusts.

The folder walk follows the hub's rules (crypto.page: file types, exclusions, path syntax);
its few lines are repeated here and in auditor/page.py because client/ never imports hub/.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from crypto.errors import MalformedError
from crypto.page import (
    INDEX_PATH,
    MAX_FILES,
    check_page_path,
    content_security_policy,
    content_type,
    render_index,
    skipped_entry,
    tree_id,
)

__all__ = ["WebApp", "WebAppError", "default_web_dir", "load_web_app", "read_web_dir"]

MAX_FILE_BYTES: Final = 16 << 20
MAX_TOTAL_BYTES: Final = 64 << 20
MAX_DEPTH: Final = 8


class WebAppError(ValueError):
    """The web/ folder cannot be served; the message names the file."""


def default_web_dir() -> Path:
    """The web/ folder of this installation: the ``ncii_web`` data package of a wheel, else
    the web/ next to client/ in a source checkout."""
    spec = importlib.util.find_spec("ncii_web")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "web"


def read_web_dir(root: Path) -> dict[str, bytes]:
    """Every servable file under ``root`` as ``{path: bytes}``, bounded; a symbolic link or
    special file anywhere refuses the whole folder (as the hub does)."""
    if not (root / INDEX_PATH).is_file():
        raise WebAppError(f"{root} holds no {INDEX_PATH}; give --web-dir the web/ folder")
    out: dict[str, bytes] = {}
    total = 0

    def walk(folder: Path, rel: str, depth: int) -> None:
        nonlocal total
        if depth > MAX_DEPTH:
            raise WebAppError(f"{folder} is more than {MAX_DEPTH} folders deep")
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            path = rel + entry.name
            if skipped_entry(entry.name, depth):
                continue
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise WebAppError(f"web/{path} is a symbolic link; only regular files are served")
            if stat.S_ISDIR(st.st_mode):
                walk(Path(entry.path), path + "/", depth + 1)
                continue
            if not stat.S_ISREG(st.st_mode):
                raise WebAppError(f"web/{path} is not a regular file")
            if content_type(path) is None:
                continue
            try:
                check_page_path(path)
            except MalformedError as exc:
                raise WebAppError(f"web/{path}: {exc}") from None
            if len(out) >= MAX_FILES:
                raise WebAppError(f"web/ holds more than {MAX_FILES} servable files")
            fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                raise WebAppError(f"web/{path} is larger than {MAX_FILE_BYTES} bytes")
            total += len(data)
            if total > MAX_TOTAL_BYTES:
                raise WebAppError(f"web/ holds more than {MAX_TOTAL_BYTES} bytes of files")
            out[path] = data

    walk(root, "", 0)
    return out


@dataclass(frozen=True, slots=True)
class WebApp:
    """What is served under ``/<token>/``: the rendered index, the files, their tree."""

    index: bytes
    files: dict[str, bytes]
    tree: str
    csp: str


def load_web_app(root: Path, token: str, log_key: str | None) -> WebApp:
    """Read ``root`` and render its index at ``/<token>/`` with ``log_key`` in the page's
    ``ncii-log-key`` meta (None: left empty, the page then cannot check receipts)."""
    contents = read_web_dir(root)
    try:
        digests = {p: hashlib.sha256(b).digest() for p, b in contents.items()}
        tree = tree_id(digests)
        rendered = render_index(contents[INDEX_PATH], digests, tree, log_key, f"/{token}/")
    except MalformedError as exc:
        raise WebAppError(f"web/ cannot be served: {exc}") from None
    return WebApp(rendered.body, contents, tree, content_security_policy(rendered.importmap_hash))
