"""Where a log's public files come from: its HTTP prefix, or a local directory of tiles.

Both serve the C2SP tlog-tiles layout (``checkpoint``, ``tile/...``) below one prefix. Every
read is capped so that a hostile server cannot exhaust memory, and tile paths are parsed with
crypto.tiles.parse_path before they reach a URL or the file system.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from pathlib import Path
from typing import Final, Protocol

import httpx

from auditor.errors import ConfigError, FetchError, NotFoundError, ResponseTooLargeError
from auditor.logformat import RedactUrls
from crypto.errors import MalformedError
from crypto.tiles import MAX_ENTRY_SIZE, TILE_WIDTH, parse_path
from crypto.urlredact import redact_url, redact_urls

__all__ = [
    "MAX_BUNDLE_BYTES",
    "MAX_CHECKPOINT_BYTES",
    "MAX_TILE_BYTES",
    "DirSource",
    "HttpSource",
    "LogSource",
    "fetch_url",
    "open_source",
    "path_cap",
    "read_file_capped",
]

MAX_CHECKPOINT_BYTES: Final = 1 << 20
"""Largest checkpoint note read (the note parser's own default limit)."""
MAX_TILE_BYTES: Final = TILE_WIDTH * 32
"""Largest hash tile: 256 hashes of 32 bytes (specs/tiles.md)."""
MAX_BUNDLE_BYTES: Final = TILE_WIDTH * (2 + MAX_ENTRY_SIZE)
"""Largest entry bundle: 256 entries, each a 2-byte length and at most 65535 bytes."""
FETCH_DEADLINE: Final = 120.0
"""Seconds one file may take in total: a server trickling bytes cannot hold a reader forever."""


def path_cap(path: str) -> tuple[int, str]:
    """(byte cap, kind) for ``path``; ConfigError for anything but a checkpoint or tile path."""
    if path == "checkpoint":
        return MAX_CHECKPOINT_BYTES, "checkpoint"
    try:
        tile = parse_path(path)
    except MalformedError as exc:
        raise ConfigError(f"not a log path: {path!r}") from exc
    if path.startswith("tile/entries/"):
        return tile.width * (2 + MAX_ENTRY_SIZE), "entry bundle"
    return tile.width * 32, "tile"


class LogSource(Protocol):
    """Read-only access to a log's files by path (``checkpoint`` or a canonical tile path)."""

    name: str

    def get(self, path: str) -> bytes:
        """The bytes at ``path``; NotFoundError if absent, FetchError on any other failure."""
        ...


def redact_httpx_log() -> None:
    """httpx logs each request's URL at INFO, credentials included; an application that
    embeds the auditor may log INFO, so the filter sits on httpx's logger (idempotent)."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, RedactUrls) for f in logger.filters):
        logger.addFilter(RedactUrls())


class HttpSource:
    """A log served over HTTP(S) at a URL prefix (tlog-tiles: ``<prefix>/tile/0/000``)."""

    def __init__(self, prefix: str, client: httpx.Client | None = None) -> None:
        redact_httpx_log()
        self._prefix = prefix.rstrip("/")
        # What reports, alerts and webhooks show: never the prefix's credentials or query.
        self.name = redact_url(self._prefix)
        self._client = client or httpx.Client(timeout=30.0, follow_redirects=False)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def get(self, path: str) -> bytes:
        cap, what = path_cap(path)
        return fetch_url(self._client, f"{self._prefix}/{path}", cap, what)


def fetch_url(
    client: httpx.Client,
    url: str,
    cap: int,
    what: str = "file",
    deadline: float = FETCH_DEADLINE,
) -> bytes:
    """GET ``url``, reading at most ``cap`` bytes of it; 404 is NotFoundError.

    The body is streamed raw (``Accept-Encoding: identity``; a compressed answer is refused,
    since a few KB of gzip can inflate to gigabytes) and reading stops as soon as the cap is
    passed (ResponseTooLargeError) or ``deadline`` seconds have gone by (FetchError).
    """
    started = time.monotonic()
    try:
        with client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response:
            if response.status_code == 404:
                raise NotFoundError(f"{redact_url(url)}: not found (HTTP 404)")
            if response.status_code != 200:
                raise FetchError(f"{redact_url(url)}: HTTP {response.status_code}")
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise FetchError(
                    f"{redact_url(url)}: the server sent a compressed answer (Content-Encoding: "
                    f"{printable(encoding)}) although none was asked for; refusing to inflate it"
                )
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > cap:
                raise _too_large(url, what, cap)
            chunks: list[bytes] = []
            total = 0
            for chunk in response.iter_raw():
                total += len(chunk)
                if total > cap:
                    raise _too_large(url, what, cap)
                if time.monotonic() - started > deadline:
                    raise FetchError(
                        f"{redact_url(url)}: the answer took longer than {deadline:.0f} s; "
                        "try again later"
                    )
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.TransportError as exc:
        raise FetchError(f"{redact_url(url)}: {describe_transport(exc)}") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"{redact_url(url)}: {redact_urls(str(exc))}") from exc


_PLAIN_HTTP_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"}
)


def describe_transport(exc: BaseException) -> str:
    """A transport failure in words, naming an http/https mismatch (issue 18, finding 9)."""
    import ssl

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            reason = str(getattr(current, "reason", "") or "").upper()
            if reason in _PLAIN_HTTP_REASONS or "WRONG_VERSION_NUMBER" in str(current):
                return (
                    "this address speaks plain HTTP, not HTTPS; try http:// if it is on "
                    "this computer, otherwise check the address"
                )
        text = str(current)
        if isinstance(current, httpx.RemoteProtocolError) and "illegal" in text:
            # The first bytes back were not an HTTP status line: a TLS record, most likely.
            return (
                "the answer was not plain HTTP (this address probably speaks HTTPS); write "
                "https:// instead of http://"
            )
        current = current.__cause__ or current.__context__
    if isinstance(exc, httpx.ConnectError):
        return "the connection was refused or the address was not found"
    if isinstance(exc, httpx.TimeoutException):
        return "it did not answer in time"
    return "the connection broke"


def _too_large(url: str, what: str, cap: int) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"{redact_url(url)}: the answer is larger than a {what} can be ({cap} bytes); "
        "reading stopped there. "
        "The server is misbehaving or the URL is not a log prefix."
    )


def printable(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters with anything unprintable escaped (for messages)."""
    return text[:limit].encode("ascii", "backslashreplace").decode().replace("\n", "\\n")


class DirSource:
    """A log laid out as files in a local directory (a mirror, a backup, test vectors)."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise ConfigError(f"{root}: not a directory")
        self.root = root
        self.name = f"file://{root}"

    def get(self, path: str) -> bytes:
        cap, what = path_cap(path)
        return read_file_capped(self.root / path, cap, what)


def read_file_capped(target: Path, cap: int, what: str = "file") -> bytes:
    """A local file made by someone else, read up to ``cap`` bytes (never more into memory)."""
    try:
        with open(target, "rb") as f:
            data = f.read(cap + 1)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise NotFoundError(f"{target}: not found") from exc
    except OSError as exc:
        raise FetchError(f"{target}: {exc.strerror}") from exc
    if len(data) > cap:
        raise ResponseTooLargeError(
            f"{target}: larger than a {what} can be ({cap} bytes); not read further"
        )
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
