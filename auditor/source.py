"""Where a log's public files come from: its HTTP prefix, or a local directory of tiles.

Both serve the C2SP tlog-tiles layout (``checkpoint``, ``tile/...``) below one prefix. Every
read is capped so that a hostile server cannot exhaust memory, and tile paths are parsed with
crypto.tiles.parse_path before they reach a URL or the file system.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Final, Protocol

import httpx

from auditor.errors import ConfigError, FetchError, NotFoundError
from crypto.errors import MalformedError
from crypto.tiles import parse_path

__all__ = ["MAX_CHECKPOINT_BYTES", "DirSource", "HttpSource", "LogSource", "open_source"]

MAX_CHECKPOINT_BYTES: Final = 1 << 20
"""Largest checkpoint note read (the note parser's own default limit)."""
MAX_BUNDLE_BYTES: Final = 256 * (2 + 0xFFFF)


def _check_path(path: str) -> int:
    """The byte cap for ``path``; ConfigError for anything but a checkpoint or tile path."""
    if path == "checkpoint":
        return MAX_CHECKPOINT_BYTES
    try:
        tile = parse_path(path)
    except MalformedError as exc:
        raise ConfigError(f"not a log path: {path!r}") from exc
    return MAX_BUNDLE_BYTES if path.startswith("tile/entries/") else tile.width * 32


class LogSource(Protocol):
    """Read-only access to a log's files by path (``checkpoint`` or a canonical tile path)."""

    name: str

    def get(self, path: str) -> bytes:
        """The bytes at ``path``; NotFoundError if absent, FetchError on any other failure."""
        ...


class HttpSource:
    """A log served over HTTP(S) at a URL prefix (tlog-tiles: ``<prefix>/tile/0/000``)."""

    def __init__(self, prefix: str, client: httpx.Client | None = None) -> None:
        self.name = prefix.rstrip("/")
        self._client = client or httpx.Client(timeout=30.0, follow_redirects=False)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def get(self, path: str) -> bytes:
        return fetch_url(self._client, f"{self.name}/{path}", _check_path(path))


def fetch_url(client: httpx.Client, url: str, cap: int) -> bytes:
    """GET ``url`` with a byte cap; 404 is NotFoundError, other failures FetchError."""
    try:
        with client.stream("GET", url) as response:
            if response.status_code == 404:
                raise NotFoundError(f"{url}: not found (HTTP 404)")
            if response.status_code != 200:
                raise FetchError(f"{url}: HTTP {response.status_code}")
            chunks: list[bytes] = []
            total = 0
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > cap:
                    raise FetchError(f"{url}: answer larger than {cap} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc


class DirSource:
    """A log laid out as files in a local directory (a mirror, a backup, test vectors)."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise ConfigError(f"{root}: not a directory")
        self.root = root
        self.name = f"file://{root}"

    def get(self, path: str) -> bytes:
        cap = _check_path(path)
        target = self.root / path
        try:
            with open(target, "rb") as f:
                data = f.read(cap + 1)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFoundError(f"{target}: not found") from exc
        except OSError as exc:
            raise FetchError(f"{target}: {exc.strerror}") from exc
        if len(data) > cap:
            raise FetchError(f"{target}: larger than {cap} bytes")
        return data


def open_source(spec: str) -> HttpSource | DirSource:
    """``http(s)://...`` -> HttpSource; ``file:///path`` or a plain path -> DirSource."""
    if spec.startswith(("http://", "https://")):
        return HttpSource(spec)
    if spec.startswith("file://"):
        parsed = urllib.parse.urlparse(spec)
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError("file:// URLs must name a local path (file:///path)")
        return DirSource(Path(urllib.parse.unquote(parsed.path)))
    if "://" in spec:
        raise ConfigError(f"unsupported log URL scheme in {spec!r} (use http, https or file)")
    return DirSource(Path(spec))
